// `troupe tokenize` end to end: the aidreams260K prompts encode (with --special: BOS) to their
// reference prompt_ids as JSON, and --decode gives the prompt back.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/child_process.hpp"
#include "tests/cli/cli_runner.hpp"
#include "tests/test_paths.hpp"

using nlohmann::json;

using troupe::test::run_troupe;
using troupe::test::shell_quoted;

TEST_CASE("troupe tokenize encodes and decodes the aidreams260K prompts") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  std::ifstream in(dir / "reference.json");
  json reference = json::parse(in);
  for (const json& item : reference["cases"]) {
    const std::string prompt = item["prompt_text"];
    const std::vector<int> prompt_ids = item["prompt_ids"];
    CAPTURE(prompt);
    auto encoded = run_troupe("tokenize --tokenizer " + shell_quoted(dir.string()) + " --text " + shell_quoted(prompt) +
                              " --special --json");
    REQUIRE(encoded.exit_code == 0);
    CHECK(json::parse(encoded.out)["ids"].get<std::vector<int>>() == prompt_ids);

    std::string id_list;
    for (int id : prompt_ids) {
      if (!id_list.empty()) id_list += ',';
      id_list += std::to_string(id);
    }
    auto decoded =
        run_troupe("tokenize --tokenizer " + shell_quoted(dir.string()) + " --decode " + id_list + " --json");
    REQUIRE(decoded.exit_code == 0);
    CHECK(json::parse(decoded.out)["text"] == prompt);
  }
}

TEST_CASE("troupe tokenize reports bad input clearly") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  auto bad_id = run_troupe("tokenize --tokenizer " + shell_quoted(dir.string()) + " --decode 1,x");
  CHECK(bad_id.exit_code != 0);
  CHECK(bad_id.err.find("--decode: 'x' is not a non-negative integer id") != std::string::npos);
  auto no_tokenizer = run_troupe("tokenize --tokenizer /nonexistent --text hi");
  CHECK(no_tokenizer.exit_code != 0);
  CHECK(no_tokenizer.err.find("/nonexistent/tokenizer.json does not exist") != std::string::npos);
}
