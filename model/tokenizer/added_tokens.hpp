#pragma once
// The "added_tokens" of tokenizer.json (special tokens such as <|begin_of_text|> and <s>). They are
// found in the raw text before normalisation and are never split; the text between them goes
// through the normalizer / pre-tokenizer / model pipeline.
#include <nlohmann/json_fwd.hpp>

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace troupe::tokenizer {

struct AddedToken {
  int id = 0;
  std::string content;
  bool special = false;
  bool lstrip = false;       // swallow whitespace on the left
  bool rstrip = false;       // swallow whitespace on the right
  bool single_word = false;  // only match when not inside a word
};

// A piece of the input: either an added token, or text to run through the pipeline.
struct TextSegment {
  std::string_view text;
  std::optional<int> added_token_id;
};

class AddedTokens {
 public:
  // `json` is the "added_tokens" array (null: none).
  static AddedTokens from_json(const nlohmann::json& json);

  // Splits `text` at added tokens, longest match first at each position.
  std::vector<TextSegment> split(std::string_view text) const;

  const AddedToken* find(int id) const;
  std::optional<int> find(std::string_view content) const;
  bool is_special(int id) const;
  bool empty() const { return tokens_.empty(); }
  // One past the largest added token id (0 without any).
  int id_limit() const;

 private:
  // The longest token that matches at text[pos] and may stand there, or nullptr.
  const AddedToken* match_at(std::string_view text, size_t pos) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<int, size_t> index_of_id_;
  // Candidates by first byte, longest first, so a scan checks only plausible tokens.
  std::array<std::vector<size_t>, 256> by_first_byte_;
};

}  // namespace troupe::tokenizer
