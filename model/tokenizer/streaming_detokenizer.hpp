#pragma once
// Turns ids into text one id at a time while a model generates, emitting exactly the text each id
// adds. Never emits a partial UTF-8 character: while the text decoded so far ends in U+FFFD (bytes
// of a character still to come) it is held back. Concatenating every feed() and the final finish()
// gives exactly Tokenizer::decode of all the ids.
//
// How: only a short window of recent ids is decoded — from the start of the last emitted token
// (so decoders that treat the first token specially, like Strip or Metaspace, see the same
// context) — and the text beyond what that window already produced is the new text.
#include <string>
#include <vector>

#include "model/tokenizer/tokenizer.hpp"

namespace troupe {

class StreamingDetokenizer {
 public:
  // `tokenizer` must outlive this object.
  explicit StreamingDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens = false)
      : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

  // The text `id` completes; empty while a character is incomplete. Throws for an unknown id.
  std::string feed(int id);
  // What is still held back (e.g. a dangling partial character, as U+FFFD); then starts afresh.
  std::string finish();

 private:
  std::string decode_window(size_t end) const;

  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<int> window_;  // ids from the start of the last emitted text on
  size_t emitted_ids_ = 0;   // ids of window_ whose text has been emitted
};

}  // namespace troupe
