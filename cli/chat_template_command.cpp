// `troupe chat-template`: renders a model's chat template for a conversation, as transformers'
// apply_chat_template(messages, tools=..., add_generation_prompt=..., tokenize=False, **vars) does.
//   troupe chat-template --tokenizer DIR --messages FILE.json [--tools FILE.json] [--add-generation-prompt]
//                        [--var NAME=JSON ...] [--chat-template FILE]
// FILE.json holds the list of messages, or an object with "messages" (and "tools") as a chat request
// has them; "-" reads stdin. Prints exactly the rendered prompt, without an added newline. A template
// error, raise_exception() included, exits non-zero with the template's message on stderr.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>

#include "cli/command_registry.hpp"
#include "kernels/error.hpp"
#include "model/chat_template/chat_template.hpp"

namespace troupe::cli {
namespace {

using Json = ChatTemplate::Json;

struct ChatTemplateOptions {
  std::string tokenizer_dir;
  std::string messages_file;
  std::string tools_file;
  std::string template_file;
  bool add_generation_prompt = false;
  std::vector<std::string> variables;
};

Json read_json_file(const std::string& path, const char* option) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream file(path, std::ios::binary);
    if (!file) fail("{}: cannot read {}", option, path);
    text.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  }
  try {
    return Json::parse(text);
  } catch (const Json::exception& error) {
    fail("{}: {} is not valid JSON: {}", option, path, error.what());
  }
}

int run_chat_template(const ChatTemplateOptions& options) {
  if (options.tokenizer_dir.empty() && options.template_file.empty())
    fail("chat-template needs --tokenizer DIR or --chat-template FILE");
  ChatTemplate chat = options.template_file.empty()
                          ? ChatTemplate::from_tokenizer_dir(options.tokenizer_dir)
                          : ChatTemplate::from_file(options.template_file, options.tokenizer_dir);
  Json messages = read_json_file(options.messages_file, "--messages");
  Json tools = nullptr;
  if (messages.is_object()) {  // a chat request: {"messages": [...], "tools": [...]}
    if (messages.contains("tools")) tools = messages["tools"];
    messages = Json(messages["messages"]);
  }
  if (!options.tools_file.empty()) tools = read_json_file(options.tools_file, "--tools");
  Json variables = Json::object();
  for (const std::string& assignment : options.variables) {
    size_t equals = assignment.find('=');
    if (equals == std::string::npos || equals == 0) fail("--var {}: expected NAME=JSON", assignment);
    std::string name = assignment.substr(0, equals);
    try {
      variables[name] = Json::parse(assignment.substr(equals + 1));
    } catch (const Json::exception&) {
      fail("--var {}: the value is not JSON (write a string as {}='\"text\"')", assignment, name);
    }
  }
  std::string prompt = chat.render(messages, tools, options.add_generation_prompt, variables);
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  return 0;
}

TROUPE_COMMAND("chat-template", "render a model's chat template (tokenizer_config.json) for a conversation",
               [](CLI::App& cmd) -> std::function<int()> {
                 auto options = std::make_shared<ChatTemplateOptions>();
                 cmd.add_option("--tokenizer", options->tokenizer_dir,
                                "folder with tokenizer_config.json (its chat_template and special tokens)");
                 cmd.add_option(
                        "--messages", options->messages_file,
                        "JSON file: a list of messages, or {\"messages\": [...], \"tools\": [...]}; - for stdin")
                     ->required();
                 cmd.add_option("--tools", options->tools_file, "JSON file with the list of tools");
                 cmd.add_flag("--add-generation-prompt", options->add_generation_prompt,
                              "end with the start of an assistant turn");
                 cmd.add_option("--var", options->variables,
                                "NAME=JSON: a further template variable, e.g. enable_thinking=false");
                 cmd.add_option("--chat-template", options->template_file,
                                "a Jinja file to use instead of the tokenizer's chat_template");
                 return [options] { return run_chat_template(*options); };
               });

}  // namespace
}  // namespace troupe::cli
