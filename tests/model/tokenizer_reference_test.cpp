// The acceptance references: every case of ../shared/tokenizers/{llama3,qwen3,spm32k}/reference.json
// encodes to exactly its ids and decodes to exactly its text, also when streamed id by id; and the
// aidreams260K prompts encode, with BOS, to their prompt_ids.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "model/tokenizer/streaming_detokenizer.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "tests/test_paths.hpp"

using namespace troupe;
using nlohmann::json;

namespace {

json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in, "cannot open " << path);
  return json::parse(in);
}

std::string stream_decode(const Tokenizer& tokenizer, const std::vector<int>& ids) {
  StreamingDetokenizer stream(tokenizer);
  std::string text;
  for (int id : ids) text += stream.feed(id);
  return text + stream.finish();
}

void check_reference(const std::filesystem::path& dir) {
  Tokenizer tokenizer = Tokenizer::from_dir(dir);
  json reference = read_json(dir / "reference.json");
  REQUIRE(reference["cases"].size() > 0);
  for (const json& item : reference["cases"]) {
    const std::string text = item["text"];
    const std::vector<int> ids = item["ids"];
    const std::string decoded = item["decoded"];
    CAPTURE(text);
    CHECK(tokenizer.encode(text, false) == ids);
    CHECK(tokenizer.decode(ids) == decoded);
    CHECK(stream_decode(tokenizer, ids) == decoded);
  }
}

}  // namespace

TEST_CASE("llama3 tokenizer matches its reference encodings") {
  TROUPE_REQUIRE_SHARED(dir, "tokenizers/llama3");
  check_reference(dir);
}

TEST_CASE("qwen3 tokenizer matches its reference encodings") {
  TROUPE_REQUIRE_SHARED(dir, "tokenizers/qwen3");
  check_reference(dir);
}

TEST_CASE("spm32k tokenizer matches its reference encodings") {
  TROUPE_REQUIRE_SHARED(dir, "tokenizers/spm32k");
  check_reference(dir);
}

TEST_CASE("aidreams260K prompts encode with BOS to their prompt_ids") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  Tokenizer tokenizer = Tokenizer::from_dir(dir);
  json reference = read_json(dir / "reference.json");
  REQUIRE(tokenizer.bos_id().has_value());
  for (const json& item : reference["cases"]) {
    if (!item.contains("prompt_text")) continue;
    const std::string prompt = item["prompt_text"];
    const std::vector<int> prompt_ids = item["prompt_ids"];
    CAPTURE(prompt);
    CHECK(tokenizer.encode(prompt, true) == prompt_ids);
    CHECK(tokenizer.decode(prompt_ids, /*skip_special_tokens=*/true) == prompt);
  }
}
