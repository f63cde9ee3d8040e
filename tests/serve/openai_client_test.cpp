// `troupe serve` through the official OpenAI client library (the `openai` npm package, run by
// node): completions and chat completions, whole and streamed. The package is installed with
// `npm ci` into tests/serve/openai-client on first use; without node, or when npm cannot install
// it (no registry), the case is reported SKIPPED with the reason, never passed.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "tests/child_process.hpp"
#include "tests/reference_cases.hpp"
#include "tests/serve/serve_process.hpp"
#include "tests/test_paths.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using troupe::test::shell_quoted;

namespace {

// The client folder with its node_modules, or nothing (the case was skipped with the reason).
std::optional<std::filesystem::path> openai_client_dir() {
  const std::filesystem::path dir = std::filesystem::path(TROUPE_SOURCE_DIR) / "tests/serve/openai-client";
  auto node = troupe::test::run_shell("node --version", 30s);
  if (node.exit_code != 0) {
    troupe::test::skip_case("node is not installed (scripts/setup.sh installs nodejs and npm)");
    return std::nullopt;
  }
  if (!std::filesystem::exists(dir / "node_modules/openai/package.json")) {
    auto install = troupe::test::run_shell(
        // Node reads its own CA list, not the system's; the system bundle (where a site adds its own
        // CA) is added when the caller set none. A HOME for npm's cache when the caller has none (env -i).
        "HOME=\"${HOME:-/tmp}\" NODE_EXTRA_CA_CERTS=\"${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}\" "
        "npm ci --prefix " +
            shell_quoted(dir.string()) + " --no-audit --no-fund 2>&1",
        300s, true);
    if (install.exit_code != 0 || !std::filesystem::exists(dir / "node_modules/openai/package.json")) {
      troupe::test::skip_case("SKIPPED LOUDLY: `npm ci` could not install the openai package (no npm registry?): " +
                              install.describe());
      return std::nullopt;
    }
  }
  return dir;
}

}  // namespace

TEST_CASE("the openai npm client streams and non-streams completions and chat completions") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  TROUPE_REQUIRE_SHARED(tokenizer, "tokenizers/spm32k");
  auto client_dir = openai_client_dir();
  if (!client_dir) return;
  json config = json::parse(std::ifstream(tokenizer / "tokenizer_config.json"));
  auto jinja =
      std::filesystem::temp_directory_path() / ("troupe_openai_client_" + std::to_string(::getpid()) + ".jinja");
  std::ofstream(jinja) << config["chat_template"].get<std::string>();

  troupe::test::ServeProcess server("--model " + shell_quoted(dir.string()) + " --chat-template " +
                                    shell_quoted(jinja.string()) + " --api-key k3y");
  auto cases = troupe::test::load_reference_cases(dir);
  REQUIRE(!cases.empty());
  const auto& c = cases[1 % cases.size()];
  auto run = troupe::test::run_shell(
      "TROUPE_TEST_API_KEY=k3y node " + shell_quoted((*client_dir / "client_test.mjs").string()) + " " +
          shell_quoted(server.url("/v1")) + " aidreams260K " + shell_quoted(json(c.prompt_ids).dump()) + " " +
          std::to_string(c.greedy_ids.size()) + " chat",
      120s);
  troupe::test::require_no_timeout(run);
  REQUIRE_MESSAGE(run.exit_code == 0, run.describe());
  json out = json::parse(run.out);
  std::vector<int32_t> ids = out["completion"]["ids"];
  const size_t n = std::min(c.compare_first, c.greedy_ids.size());
  REQUIRE(ids.size() >= n);
  CHECK(std::vector<int32_t>(ids.begin(), ids.begin() + n) ==
        std::vector<int32_t>(c.greedy_ids.begin(), c.greedy_ids.begin() + n));
  CHECK(out["completion_stream"]["ids"] == out["completion"]["ids"]);
  CHECK(out["completion_stream"]["finish_reason"] == out["completion"]["finish_reason"]);
  CHECK(out["completion_stream"]["usage"]["completion_tokens"] == ids.size());
  CHECK(out["completion"]["usage"]["prompt_tokens"] == c.prompt_ids.size());
  CHECK(out["chat"]["role"] == "assistant");
  CHECK(out["chat"]["usage"]["completion_tokens"] == 16);
  CHECK(out["chat_stream"]["role"] == "assistant");
  CHECK(out["chat_stream"]["content"] == out["chat"]["content"]);
  CHECK(out["chat_stream"]["usage"] == out["chat"]["usage"]);
  CHECK(out["unknown_model_status"] == 404);
  std::filesystem::remove(jinja);
}
