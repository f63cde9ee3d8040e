#include "model/chat_template/chat_template.hpp"

#include <fstream>
#include <sstream>

#include "kernels/error.hpp"
#include "model/chat_template/jinja_parser.hpp"
#include "model/chat_template/jinja_renderer.hpp"

namespace troupe {
namespace {

using Json = ChatTemplate::Json;

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read {}", path.string());
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

Json read_config(const std::filesystem::path& path) {
  try {
    return Json::parse(read_text(path));
  } catch (const Json::exception& error) {
    fail("{} is not valid JSON: {}", path.string(), error.what());
  }
}

// The special tokens a tokenizer_config.json sets, as name -> string ("<s>" or {"content": "<s>"}).
Json special_tokens_of(const Json& config) {
  Json tokens = Json::object();
  for (const char* name :
       {"bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"}) {
    auto it = config.find(name);
    if (it == config.end()) continue;
    if (it->is_string())
      tokens[name] = *it;
    else if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
      tokens[name] = (*it)["content"];
  }
  return tokens;
}

}  // namespace

ChatTemplate ChatTemplate::from_tokenizer_dir(const std::filesystem::path& dir) {
  const std::filesystem::path config_path = dir / "tokenizer_config.json";
  const std::filesystem::path jinja_path = dir / "chat_template.jinja";
  const bool has_config = std::filesystem::exists(config_path);
  Json config = has_config ? read_config(config_path) : Json::object();
  const std::string origin = config_path.string() + " (chat_template)";
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) {
    if (std::filesystem::exists(jinja_path)) return from_file(jinja_path, has_config ? dir : std::filesystem::path());
    fail("{} has no chat_template, and there is no {}", has_config ? config_path.string() : dir.string(),
         jinja_path.string());
  }
  if (it->is_string()) return ChatTemplate(it->get<std::string>(), origin, special_tokens_of(config));
  if (!it->is_array())
    fail("{}: chat_template is neither a string nor a list of {{name, template}}", config_path.string());
  std::string names;
  for (const Json& entry : *it) {
    if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") || !entry["template"].is_string())
      fail("{}: a chat_template list entry is not {{\"name\": ..., \"template\": \"...\"}}", config_path.string());
    if (entry["name"] == "default")
      return ChatTemplate(entry["template"].get<std::string>(), config_path.string() + " (chat_template 'default')",
                          special_tokens_of(config));
    names += (names.empty() ? "" : ", ") + entry["name"].dump();
  }
  fail("{}: chat_template has no template named \"default\" (it has {})", config_path.string(),
       names.empty() ? "none" : names);
}

ChatTemplate ChatTemplate::from_file(const std::filesystem::path& template_file,
                                     const std::filesystem::path& tokenizer_dir) {
  Json tokens = Json::object();
  if (!tokenizer_dir.empty()) tokens = special_tokens_of(read_config(tokenizer_dir / "tokenizer_config.json"));
  return ChatTemplate(read_text(template_file), template_file.string(), std::move(tokens));
}

ChatTemplate::ChatTemplate(std::string_view source, std::string origin, Json special_tokens)
    : template_(std::make_shared<const jinja::Template>(jinja::parse_template(source, std::move(origin)))),
      special_tokens_(std::move(special_tokens)) {}

std::string ChatTemplate::render(const Json& messages, const Json& tools, bool add_generation_prompt,
                                 const Json& extra_variables) const {
  if (!messages.is_array()) fail("chat template: messages must be a list, not {}", messages.type_name());
  if (!tools.is_null() && !tools.is_array())
    fail("chat template: tools must be a list or null, not {}", tools.type_name());
  if (!extra_variables.is_object()) fail("chat template: extra variables must be an object");
  std::map<std::string, jinja::Value> variables;
  for (const auto& [name, token] : special_tokens_.items()) variables[name] = jinja::Value(token);
  variables["messages"] = jinja::Value(messages);
  variables["tools"] = jinja::Value(tools);
  variables["documents"] = jinja::Value(Json(nullptr));
  variables["add_generation_prompt"] = jinja::Value(Json(add_generation_prompt));
  for (const auto& [name, value] : extra_variables.items()) variables[name] = jinja::Value(value);
  return jinja::render(*template_, variables, limits_);
}

}  // namespace troupe
