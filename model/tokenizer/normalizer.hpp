#pragma once
// The "normalizer" stage of tokenizer.json: rewrites each stretch of text between added tokens
// before it is split. Supported: Sequence, Prepend, Replace, NFC, NFKC (NF* through utf8proc).
#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::tokenizer {

class NormalizerStep {
 public:
  virtual ~NormalizerStep() = default;
  virtual std::string apply(std::string text) const = 0;
};

class Normalizer {
 public:
  // `json` is the "normalizer" value (null: the identity). Unknown types are a troupe::Error.
  static Normalizer from_json(const nlohmann::json& json);

  bool is_identity() const { return steps_.empty(); }
  // `text` must be valid UTF-8.
  std::string normalize(std::string_view text) const;

 private:
  std::vector<std::shared_ptr<const NormalizerStep>> steps_;
};

// NFC or NFKC of valid UTF-8 text (used by the normalizer and by tests).
std::string unicode_normalize(std::string_view text, bool compatibility);

}  // namespace troupe::tokenizer
