#include "model/tokenizer/json_fields.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <vector>

#include "kernels/error.hpp"

namespace troupe::tokenizer {

std::string stage_type(const nlohmann::json& node, std::string_view stage) {
  if (!node.is_object() || !node.contains("type") || !node["type"].is_string())
    fail("tokenizer.json: {} {} has no \"type\"", stage, describe(node));
  return node["type"].get<std::string>();
}

const nlohmann::json& sequence_children(const nlohmann::json& node, const char* key, std::string_view stage) {
  if (!node.contains(key) || !node[key].is_array())
    fail("tokenizer.json: Sequence {} needs a \"{}\" array", stage, key);
  return node[key];
}

std::string describe(const nlohmann::json& node) {
  if (node.is_object() || node.is_array()) return fmt::format("(an {} of {} entries)", node.type_name(), node.size());
  std::string text = node.dump();
  return text.size() > 100 ? text.substr(0, 100) + "..." : text;
}

size_t nesting_depth(const nlohmann::json& node) {
  size_t deepest = 0;
  std::vector<std::pair<const nlohmann::json*, size_t>> pending = {{&node, 0}};
  while (!pending.empty()) {
    auto [current, depth] = pending.back();
    pending.pop_back();
    if (!current->is_structured()) continue;
    deepest = std::max(deepest, depth + 1);
    for (const auto& child : *current) pending.emplace_back(&child, depth + 1);
  }
  return deepest;
}

std::string optional_string(const nlohmann::json& node, const char* key) {
  if (!node.contains(key) || node[key].is_null()) return {};
  return node[key].get<std::string>();
}

}  // namespace troupe::tokenizer
