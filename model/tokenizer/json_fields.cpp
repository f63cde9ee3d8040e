#include "model/tokenizer/json_fields.hpp"

#include <nlohmann/json.hpp>

#include "kernels/error.hpp"

namespace troupe::tokenizer {

std::string stage_type(const nlohmann::json& node, std::string_view stage) {
  if (!node.is_object() || !node.contains("type") || !node["type"].is_string())
    fail("tokenizer.json: {} {} has no \"type\"", stage, node.dump().substr(0, 200));
  return node["type"].get<std::string>();
}

const nlohmann::json& sequence_children(const nlohmann::json& node, const char* key, std::string_view stage) {
  if (!node.contains(key) || !node[key].is_array())
    fail("tokenizer.json: Sequence {} needs a \"{}\" array", stage, key);
  return node[key];
}

std::string optional_string(const nlohmann::json& node, const char* key) {
  if (!node.contains(key) || node[key].is_null()) return {};
  return node[key].get<std::string>();
}

}  // namespace troupe::tokenizer
