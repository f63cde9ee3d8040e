#pragma once
// Reading the stage objects of tokenizer.json ({"type": "Sequence", "normalizers": [...]} ...)
// with errors that name the stage.
#include <nlohmann/json_fwd.hpp>

#include <string>
#include <string_view>

namespace troupe::tokenizer {

// The "type" of a stage object such as a normalizer; throws naming `stage` when there is none.
std::string stage_type(const nlohmann::json& node, std::string_view stage);

// The children of a Sequence stage, e.g. node["normalizers"]; throws when that is not an array.
const nlohmann::json& sequence_children(const nlohmann::json& node, const char* key, std::string_view stage);

// A short description of a value for error messages: primitives as JSON, containers by kind and
// size (dumping a deeply nested value would recurse without bound).
std::string describe(const nlohmann::json& node);

// How deeply containers nest inside `node` (0 for a primitive), without recursing.
size_t nesting_depth(const nlohmann::json& node);

// node[key] as a string, "" when it is absent or null.
std::string optional_string(const nlohmann::json& node, const char* key);

}  // namespace troupe::tokenizer
