#pragma once
// troupe::ChatTemplate: a Hugging Face chat template (the Jinja `chat_template` of
// tokenizer_config.json) rendered into prompt text as transformers' apply_chat_template does.
//
//   auto chat = troupe::ChatTemplate::from_tokenizer_dir(model_dir);
//   std::string prompt = chat.render(messages, /*tools=*/nullptr, /*add_generation_prompt=*/true,
//                                    {{"enable_thinking", false}});
//
// The template sees `messages`, `tools` (none when not given), `documents` (none),
// `add_generation_prompt`, the special tokens tokenizer_config.json sets (bos_token, eos_token,
// unk_token, pad_token, ...; a token is a string or an object with a `content` string), and the
// extra variables, which may override any of these. JSON is nlohmann::ordered_json so that
// objects keep their key order: `tojson` prints a request's keys in the order it sent them.
//
// Errors: a missing or malformed file, or a template that does not parse, throws troupe::Error
// naming the file (and the template line). Rendering errors throw troupe::Error naming the line;
// raise_exception(message) in the template throws jinja::TemplateRaisedError, a troupe::Error
// whose what() is exactly the message. Every render is bounded by jinja::RenderLimits.
// Lifetime: a ChatTemplate is cheap to copy (copies share the parsed template, which is immutable)
// and may render from many threads at once; set_limits() belongs before it is shared.
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "model/chat_template/jinja_value.hpp"

namespace troupe {

namespace jinja {
struct Template;
}

class ChatTemplate {
 public:
  using Json = nlohmann::ordered_json;

  // dir/tokenizer_config.json's chat_template: a string, or a list of {"name", "template"} of
  // which "default" is used; without one, dir/chat_template.jinja (newer transformers save that).
  static ChatTemplate from_tokenizer_dir(const std::filesystem::path& dir);
  // The Jinja source in `template_file`, with the special tokens of tokenizer_dir's
  // tokenizer_config.json when a tokenizer_dir is given.
  static ChatTemplate from_file(const std::filesystem::path& template_file,
                                const std::filesystem::path& tokenizer_dir = {});
  // `origin` names the source in error messages; `special_tokens` maps names (bos_token, ...) to strings.
  ChatTemplate(std::string_view source, std::string origin, Json special_tokens = Json::object());

  // messages: a list of {"role", "content", ...}; tools: a list, or null for none;
  // extra_variables: an object of further template variables (e.g. {"enable_thinking": false}).
  std::string render(const Json& messages, const Json& tools = nullptr, bool add_generation_prompt = false,
                     const Json& extra_variables = Json::object()) const;

  const Json& special_tokens() const { return special_tokens_; }
  const jinja::RenderLimits& limits() const { return limits_; }
  void set_limits(const jinja::RenderLimits& limits) { limits_ = limits; }

 private:
  std::shared_ptr<const jinja::Template> template_;
  Json special_tokens_;
  jinja::RenderLimits limits_;
};

}  // namespace troupe
