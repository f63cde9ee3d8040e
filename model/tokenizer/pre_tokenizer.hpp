#pragma once
// The "pre_tokenizer" stage of tokenizer.json: cuts normalized text into pieces that the BPE model
// encodes one by one. Supported: Sequence, Split (String or Regex pattern; behaviours Removed,
// Isolated, MergedWithPrevious, MergedWithNext, Contiguous; invert), ByteLevel, Metaspace, Digits.
#include <nlohmann/json_fwd.hpp>

#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::tokenizer {

// The pieces of one text. Views point into the input text or into `storage`.
struct PreTokenized {
  std::vector<std::string_view> pieces;
  // A final ByteLevel step leaves pieces as raw bytes and sets this: the model then reads each byte
  // as its byte-level symbol, which saves re-encoding pieces that hit the encode cache.
  bool byte_level = false;
  std::deque<std::string> storage;  // a deque: stored strings never move

  std::string_view store(std::string text) { return storage.emplace_back(std::move(text)); }
};

class PreTokenizer {
 public:
  // `json` is the "pre_tokenizer" value (null: the whole text is one piece). Unknown types throw.
  static PreTokenizer from_json(const nlohmann::json& json);
  // One step: cuts (or marks) the pieces in place.
  using Step = std::function<void(PreTokenized& text)>;

  // `text` (valid UTF-8) must outlive the result.
  PreTokenized split(std::string_view text) const;

 private:
  std::vector<Step> steps_;
};

}  // namespace troupe::tokenizer
