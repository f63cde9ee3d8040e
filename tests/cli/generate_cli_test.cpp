// `troupe generate --json` through the real binary reproduces the references and reports bad
// input as an error on stderr with a non-zero exit code.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/cli/cli_runner.hpp"
#include "tests/reference_cases.hpp"
#include "tests/test_paths.hpp"

using namespace troupe;

namespace {

std::string join(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  return s;
}

void check_model(const std::string& model, const std::string& layout = "") {
  TROUPE_REQUIRE_SHARED(dir, "models/" + model);
  for (const auto& c : test::load_reference_cases(dir)) {
    auto r = test::run_troupe("generate --model " + dir.string() + " --prompt-ids " + join(c.prompt_ids) +
                              " --max-tokens " + std::to_string(c.greedy_ids.size()) + " --json" + layout);
    REQUIRE(r.exit_code == 0);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["prompt_ids"].get<std::vector<int32_t>>() == c.prompt_ids);
    auto ids = j["ids"].get<std::vector<int32_t>>();
    ids.resize(std::min(ids.size(), c.compare_first));
    CHECK(ids == std::vector<int32_t>(c.greedy_ids.begin(), c.greedy_ids.begin() + c.compare_first));
  }
}

}  // namespace

TEST_CASE("generate --json equals reference.json (aidreams260K)") { check_model("aidreams260K"); }
TEST_CASE("generate --json equals reference.json (gqa260K)") { check_model("gqa260K"); }
TEST_CASE("generate --tp 2 --ep 2 --pp 2 equals reference.json (mixtral-tiny, qwen2moe-tiny)") {
  check_model("mixtral-tiny", " --tp 2 --ep 2 --pp 2");
  check_model("qwen2moe-tiny", " --tp 2 --ep 2");
}
TEST_CASE("generate --ep names the numbers when the layout does not fit") {
  TROUPE_REQUIRE_SHARED(dir, "models/mixtral-tiny");
  auto r = test::run_troupe("generate --model " + dir.string() + " --prompt-ids 1 --ep 2");
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("expert_parallel_size (2) must equal tensor_parallel_size (1)") != std::string::npos);
}

TEST_CASE("generate reports bad input clearly") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  auto r = test::run_troupe("generate --model " + dir.string() + " --prompt-ids 1,600 --json");
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("prompt token id 600 is out of range for vocab_size 512") != std::string::npos);
  r = test::run_troupe("generate --model " + dir.string() + " --prompt-ids 1,x");
  CHECK(r.err.find("'x' is not a non-negative integer id") != std::string::npos);
  r = test::run_troupe("generate --model /nonexistent --prompt-ids 1");
  CHECK(r.err.find("cannot open /nonexistent/config.json") != std::string::npos);
  std::string long_prompt = "1";
  for (int i = 0; i < 200; ++i) long_prompt += ",5";
  r = test::run_troupe("generate --model " + dir.string() + " --prompt-ids " + long_prompt);
  CHECK(r.err.find("prompt of 201 tokens does not fit the context of 128 tokens") != std::string::npos);
}

TEST_CASE("make-model writes a loadable checkpoint that generates") {
  auto out = std::filesystem::temp_directory_path() / ("troupe_make_model_" + std::to_string(::getpid()));
  auto r = test::run_troupe("make-model --preset tiny --dtype bf16 --out " + out.string());
  REQUIRE(r.exit_code == 0);
  r = test::run_troupe("generate --model " + out.string() + " --prompt-ids 1,2,3 --max-tokens 5 --ignore-eos --json");
  REQUIRE(r.exit_code == 0);
  CHECK(nlohmann::json::parse(r.out)["ids"].size() == 5);
  r = test::run_troupe("make-model --preset huge --out " + out.string());
  CHECK(r.err.find("unknown model preset 'huge'") != std::string::npos);
  std::filesystem::remove_all(out);
}

TEST_CASE("generate --prompt uses the model's tokenizer and reproduces reference text") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  std::ifstream in(dir / "reference.json");
  auto ref = nlohmann::json::parse(in);
  int checked = 0;
  for (const auto& c : ref["cases"]) {
    std::string prompt = c["prompt_text"];
    if (prompt.empty()) continue;
    auto greedy = c["greedy_ids"].get<std::vector<int32_t>>();
    auto r = test::run_troupe("generate --model " + dir.string() + " --prompt '" + prompt + "' --max-tokens " +
                              std::to_string(greedy.size()) + " --json");
    REQUIRE(r.exit_code == 0);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["prompt_ids"].get<std::vector<int32_t>>() == c["prompt_ids"].get<std::vector<int32_t>>());
    CHECK(j["ids"].get<std::vector<int32_t>>() == greedy);
    CHECK(j["text"].get<std::string>() == c["completion_text"].get<std::string>());
    auto streamed = test::run_troupe("generate --model " + dir.string() + " --prompt '" + prompt + "' --max-tokens " +
                                     std::to_string(greedy.size()));
    CHECK(streamed.out == prompt + c["completion_text"].get<std::string>() + "\n");
    ++checked;
  }
  CHECK(checked > 0);
}
