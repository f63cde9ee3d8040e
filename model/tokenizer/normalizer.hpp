#pragma once
// The "normalizer" stage of tokenizer.json: rewrites each stretch of text between added tokens
// before it is split. Supported: Sequence, Prepend, Replace, NFC, NFKC (NF* through utf8proc).
#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::tokenizer {

class Normalizer {
 public:
  // `json` is the "normalizer" value (null: the identity). Unknown types are a troupe::Error.
  static Normalizer from_json(const nlohmann::json& json);
  // One rewrite of the text.
  using Step = std::function<std::string(std::string text)>;

  bool is_identity() const { return steps_.empty(); }
  // `text` must be valid UTF-8.
  std::string normalize(std::string_view text) const;

 private:
  std::vector<Step> steps_;
};

// NFC or NFKC of valid UTF-8 text (used by the normalizer and by tests).
std::string unicode_normalize(std::string_view text, bool compatibility);

}  // namespace troupe::tokenizer
