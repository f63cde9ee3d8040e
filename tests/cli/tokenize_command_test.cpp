// `troupe tokenize` end to end: the aidreams260K prompts encode (with --special: BOS) to their
// reference prompt_ids as JSON, and --decode gives the prompt back.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/child_process.hpp"
#include "tests/test_paths.hpp"

using nlohmann::json;

namespace {

std::string single_quoted(const std::string& text) { return troupe::test::shell_quoted(text); }

// Runs the troupe binary with `arguments`; returns its stdout and stderr together, and its exit status.
std::pair<std::string, int> run_troupe(const std::string& arguments) {
  auto child = troupe::test::run_shell(
      "exec " + single_quoted((troupe::test::binary_dir() / "troupe").string()) + " " + arguments,
      std::chrono::seconds(120), true);
  troupe::test::require_no_timeout(child);
  return {child.out, child.exit_code};
}

}  // namespace

TEST_CASE("troupe tokenize encodes and decodes the aidreams260K prompts") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  std::ifstream in(dir / "reference.json");
  json reference = json::parse(in);
  for (const json& item : reference["cases"]) {
    const std::string prompt = item["prompt_text"];
    const std::vector<int> prompt_ids = item["prompt_ids"];
    CAPTURE(prompt);
    auto [encoded, encode_status] = run_troupe("tokenize --tokenizer " + single_quoted(dir.string()) + " --text " +
                                               single_quoted(prompt) + " --special --json");
    REQUIRE(encode_status == 0);
    CHECK(json::parse(encoded)["ids"].get<std::vector<int>>() == prompt_ids);

    std::string id_list;
    for (int id : prompt_ids) {
      if (!id_list.empty()) id_list += ',';
      id_list += std::to_string(id);
    }
    auto [decoded, decode_status] =
        run_troupe("tokenize --tokenizer " + single_quoted(dir.string()) + " --decode " + id_list + " --json");
    REQUIRE(decode_status == 0);
    CHECK(json::parse(decoded)["text"] == prompt);
  }
}

TEST_CASE("troupe tokenize reports bad input clearly") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  auto [output, status] = run_troupe("tokenize --tokenizer " + single_quoted(dir.string()) + " --decode 1,x");
  CHECK(status != 0);
  CHECK(output.find("--decode: 'x' is not a non-negative integer id") != std::string::npos);
  std::tie(output, status) = run_troupe("tokenize --tokenizer /nonexistent --text hi");
  CHECK(status != 0);
  CHECK(output.find("/nonexistent/tokenizer.json does not exist") != std::string::npos);
}
