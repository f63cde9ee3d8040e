#include "model/tokenizer/post_processor.hpp"

#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "model/tokenizer/json_fields.hpp"

namespace troupe::tokenizer {

using nlohmann::json;

namespace {

// The ids a TemplateProcessing special token stands for: its "special_tokens" entry, else the
// token of that name.
std::vector<int> special_token_ids(const json& templ, const std::string& name,
                                   const PostProcessor::TokenLookup& lookup) {
  if (templ.contains("special_tokens") && templ["special_tokens"].contains(name)) {
    const json& entry = templ["special_tokens"][name];
    if (entry.contains("ids") && entry["ids"].is_array()) return entry["ids"].get<std::vector<int>>();
  }
  if (auto id = lookup(name)) return {*id};
  fail("tokenizer.json: TemplateProcessing special token '{}' is not a known token", name);
}

PostProcessor from_template(const json& templ, const PostProcessor::TokenLookup& lookup) {
  if (!templ.contains("single") || !templ["single"].is_array())
    fail("tokenizer.json: TemplateProcessing needs a \"single\" array");
  std::vector<int> prefix, suffix;
  bool seen_sequence = false;
  for (const json& item : templ["single"]) {
    if (item.contains("Sequence")) {
      seen_sequence = true;
    } else if (item.contains("SpecialToken")) {
      std::vector<int> ids = special_token_ids(templ, item["SpecialToken"].at("id").get<std::string>(), lookup);
      std::vector<int>& side = seen_sequence ? suffix : prefix;
      side.insert(side.end(), ids.begin(), ids.end());
    } else {
      fail("tokenizer.json: TemplateProcessing item {} is neither Sequence nor SpecialToken", describe(item));
    }
  }
  return PostProcessor::around(std::move(prefix), std::move(suffix));
}

}  // namespace

PostProcessor PostProcessor::around(std::vector<int> prefix, std::vector<int> suffix) {
  PostProcessor processor;
  processor.prefix_ = std::move(prefix);
  processor.suffix_ = std::move(suffix);
  return processor;
}

PostProcessor PostProcessor::from_json(const json& node, const TokenLookup& lookup) {
  if (node.is_null()) return {};
  const std::string type = node.value("type", std::string());
  if (type == "TemplateProcessing") return from_template(node, lookup);
  if (type == "ByteLevel") return {};  // it only trims offsets, which troupe does not track
  if (type == "Sequence" && node.contains("processors") && node["processors"].is_array()) {
    PostProcessor combined;
    for (const json& child : node["processors"]) {
      PostProcessor part = from_json(child, lookup);
      combined.prefix_.insert(combined.prefix_.end(), part.prefix_.begin(), part.prefix_.end());
      combined.suffix_.insert(combined.suffix_.end(), part.suffix_.begin(), part.suffix_.end());
    }
    return combined;
  }
  fail("tokenizer.json: unsupported post_processor type '{}' (supported: TemplateProcessing, ByteLevel, Sequence)",
       type);
}

std::vector<int> PostProcessor::apply(std::vector<int> ids) const {
  if (prefix_.empty() && suffix_.empty()) return ids;
  std::vector<int> result;
  result.reserve(prefix_.size() + ids.size() + suffix_.size());
  result.insert(result.end(), prefix_.begin(), prefix_.end());
  result.insert(result.end(), ids.begin(), ids.end());
  result.insert(result.end(), suffix_.begin(), suffix_.end());
  return result;
}

}  // namespace troupe::tokenizer
