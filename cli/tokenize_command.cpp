// `troupe tokenize`: text -> ids and ids -> text with a model folder's tokenizer.json.
//   troupe tokenize --tokenizer DIR --text "Hello" [--special] [--json]   -> {"ids": [...]}
//   troupe tokenize --tokenizer DIR --decode 1,2,3 [--json]               -> {"text": "..."}
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/command_registry.hpp"
#include "kernels/error.hpp"
#include "model/gguf_checkpoint.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace troupe::cli {
namespace {

struct TokenizeOptions {
  std::string tokenizer_dir;
  std::optional<std::string> text;
  std::optional<std::string> decode_ids;
  bool special = false;
  bool json = false;
};

int run_tokenize(const TokenizeOptions& options) {
  // A GGUF file's tokenizer from its metadata; a folder's from its tokenizer.json (named when absent).
  std::optional<Tokenizer> loaded = find_gguf_model(options.tokenizer_dir)
                                        ? Tokenizer::from_model(options.tokenizer_dir)
                                        : std::optional<Tokenizer>(Tokenizer::from_dir(options.tokenizer_dir));
  if (!loaded)
    fail("{} has no tokenizer (tokenizer.json, or a GGUF file with tokenizer.ggml.* metadata)", options.tokenizer_dir);
  Tokenizer& tokenizer = *loaded;
  if (options.text) {
    std::vector<int> ids = tokenizer.encode(*options.text, options.special);
    if (options.json)
      std::printf("%s\n", nlohmann::json{{"ids", ids}}.dump().c_str());
    else
      fmt::print("{}\n", fmt::join(ids, ","));
  } else {
    std::string text = tokenizer.decode(parse_id_list(*options.decode_ids, "--decode"), !options.special);
    std::printf("%s\n", options.json ? nlohmann::json{{"text", text}}.dump().c_str() : text.c_str());
  }
  return 0;
}

TROUPE_COMMAND("tokenize", "encode text to token ids, or decode ids to text, with a tokenizer.json",
               [](CLI::App& cmd) -> std::function<int()> {
                 auto options = std::make_shared<TokenizeOptions>();
                 cmd.add_option("--tokenizer", options->tokenizer_dir,
                                "folder with tokenizer.json (and tokenizer_config.json), or a GGUF file")
                     ->required();
                 auto* text = cmd.add_option("--text", options->text, "text to encode");
                 auto* decode = cmd.add_option("--decode", options->decode_ids, "comma-separated ids to decode");
                 text->excludes(decode);
                 cmd.add_flag("--special", options->special,
                              "encode: add BOS/EOS as the tokenizer config says; decode: keep special tokens");
                 cmd.add_flag("--json", options->json, "print {\"ids\": [...]} or {\"text\": \"...\"}");
                 return [options] {
                   if (!options->text && !options->decode_ids) fail("tokenize needs --text TEXT or --decode IDS");
                   return run_tokenize(*options);
                 };
               });

}  // namespace
}  // namespace troupe::cli
