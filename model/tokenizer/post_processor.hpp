#pragma once
// What encode(..., add_special_tokens=true) adds around a single text: the "post_processor" of
// tokenizer.json (TemplateProcessing, or a Sequence holding one; ByteLevel adds nothing), unless
// tokenizer_config.json says add_bos_token / add_eos_token, which then decide (as transformers'
// Llama tokenizers do).
#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace troupe::tokenizer {

class PostProcessor {
 public:
  using TokenLookup = std::function<std::optional<int>(std::string_view)>;

  // `json` is the "post_processor" value; `lookup` resolves token names to ids.
  static PostProcessor from_json(const nlohmann::json& json, const TokenLookup& lookup);
  // Just these ids before and after the text.
  static PostProcessor around(std::vector<int> prefix, std::vector<int> suffix);

  std::vector<int> apply(std::vector<int> ids) const;

 private:
  std::vector<int> prefix_, suffix_;
};

}  // namespace troupe::tokenizer
