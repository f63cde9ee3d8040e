// `troupe bench tokenizer`: tokenizer.json load time and encode throughput of the llama3 and qwen3
// tokenizers on a few MB of deterministic mixed text, next to the @lenml/tokenizers npm package
// (bench/tokenizer/yardstick.mjs) encoding the same text in the same run, with a check that both
// produce the same ids.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bench/bench_text.hpp"
#include "cli/command_registry.hpp"
#include "kernels/error.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace troupe::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct TokenizerBenchOptions {
  std::string tokenizers_dir;
  std::vector<std::string> names = {"llama3", "qwen3"};
  double megabytes = 4;
  int repeat = 3;
  std::string yardstick_dir = "bench/tokenizer";
  bool no_yardstick = false;
};

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct YardstickResult {
  double load_ms = 0;
  double best_seconds = 0;
  std::vector<int> ids;
};

// Runs `command` in a shell; returns its stdout, or nothing when it fails.
std::optional<std::string> run_capture(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return std::nullopt;
  std::string output;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  if (pclose(pipe) != 0) return std::nullopt;
  return output;
}

std::string quoted(const fs::path& path) { return fmt::format("'{}'", path.string()); }

// Installs the yardstick's node_modules (from package-lock.json) on first use.
std::optional<std::string> prepare_yardstick(const fs::path& dir) {
  if (!fs::exists(dir / "yardstick.mjs")) return "no " + (dir / "yardstick.mjs").string() + " (run from the repo root)";
  if (!run_capture("node --version")) return "node is not installed";
  if (!fs::exists(dir / "node_modules")) {
    std::fprintf(stderr, "installing the yardstick's npm packages in %s ...\n", dir.string().c_str());
    if (!run_capture("cd " + quoted(dir) + " && npm ci --no-audit --no-fund --silent 2>&1"))
      return "npm ci failed in " + dir.string();
  }
  return std::nullopt;
}

std::optional<YardstickResult> run_yardstick(const fs::path& dir, const fs::path& tokenizer_dir,
                                             const fs::path& text_file, int repeat) {
  fs::path ids_file = text_file.string() + ".ids";
  auto output =
      run_capture("node " + quoted(dir / "yardstick.mjs") + " --tokenizer " + quoted(tokenizer_dir) + " --text " +
                  quoted(text_file) + " --ids-out " + quoted(ids_file) + " --repeat " + std::to_string(repeat));
  if (!output) return std::nullopt;
  auto report = nlohmann::json::parse(*output, nullptr, false);
  if (report.is_discarded()) return std::nullopt;
  YardstickResult result;
  result.load_ms = report["load_ms"];
  std::vector<double> seconds = report["encode_seconds"];
  result.best_seconds = *std::min_element(seconds.begin(), seconds.end());
  std::ifstream in(ids_file, std::ios::binary);
  int32_t id = 0;
  while (in.read(reinterpret_cast<char*>(&id), sizeof id)) result.ids.push_back(id);
  fs::remove(ids_file);
  return result;
}

std::string compare_ids(const std::vector<int>& ours, const std::vector<int>& theirs) {
  if (ours == theirs) return "yes";
  const auto first = std::mismatch(ours.begin(), ours.end(), theirs.begin(), theirs.end()).first - ours.begin();
  return fmt::format("NO: {} vs {} ids, first difference at id #{}", ours.size(), theirs.size(), first);
}

int run_bench(const TokenizerBenchOptions& options) {
  const std::string text = generate_bench_text(static_cast<size_t>(options.megabytes * 1e6));
  const double megabytes = static_cast<double>(text.size()) / 1e6;
  const fs::path text_file = fs::temp_directory_path() / fmt::format("troupe-bench-tokenizer-{}.txt", getpid());
  std::ofstream(text_file, std::ios::binary) << text;

  const std::optional<std::string> yardstick_skipped =
      options.no_yardstick ? "--no-yardstick" : prepare_yardstick(options.yardstick_dir);
  if (yardstick_skipped) std::printf("yardstick skipped: %s\n", yardstick_skipped->c_str());

  std::printf("text: %.2f MB of mixed prose, code, numbers, CJK, accents, emoji; best of %d encodes\n", megabytes,
              options.repeat);
  std::printf("%-8s %10s %12s %12s %10s | %14s %13s %8s %s\n", "name", "load ms", "cold MB/s", "best MB/s", "ids",
              "lenml load ms", "lenml MB/s", "ratio", "same ids");
  for (const std::string& name : options.names) {
    const fs::path dir = fs::path(options.tokenizers_dir) / name;
    auto load_start = Clock::now();
    Tokenizer tokenizer = Tokenizer::from_dir(dir);
    double load_ms = seconds_since(load_start) * 1e3;

    std::vector<int> ids;
    double cold_seconds = 0, best_seconds = 1e30;
    for (int pass = 0; pass < options.repeat; ++pass) {
      auto start = Clock::now();
      ids = tokenizer.encode(text);
      double seconds = seconds_since(start);
      if (pass == 0) cold_seconds = seconds;  // the first pass fills the pre-token cache
      best_seconds = std::min(best_seconds, seconds);
    }
    std::printf("%-8s %10.1f %12.2f %12.2f %10zu | ", name.c_str(), load_ms, megabytes / cold_seconds,
                megabytes / best_seconds, ids.size());
    std::fflush(stdout);
    auto yardstick =
        yardstick_skipped ? std::nullopt : run_yardstick(options.yardstick_dir, dir, text_file, options.repeat);
    if (yardstick) {
      double their_rate = megabytes / yardstick->best_seconds;
      std::printf("%14.1f %13.2f %7.1fx %s\n", yardstick->load_ms, their_rate, (megabytes / best_seconds) / their_rate,
                  compare_ids(ids, yardstick->ids).c_str());
    } else {
      std::printf("%14s\n", yardstick_skipped ? "-" : "yardstick failed");
    }
  }
  fs::remove(text_file);
  return 0;
}

std::string default_tokenizers_dir() {
  const char* shared = std::getenv("TROUPE_SHARED_DIR");
  return (fs::path(shared ? shared : "../shared") / "tokenizers").string();
}

TROUPE_BENCH(
    "tokenizer", "tokenizer.json load time and encode MB/s (llama3, qwen3) vs @lenml/tokenizers",
    [](CLI::App& cmd) -> std::function<int()> {
      auto options = std::make_shared<TokenizerBenchOptions>();
      options->tokenizers_dir = default_tokenizers_dir();
      cmd.add_option("--tokenizers", options->tokenizers_dir, "folder holding the tokenizer folders")
          ->capture_default_str();
      cmd.add_option("--names", options->names, "tokenizer folders to bench")->capture_default_str();
      cmd.add_option("--megabytes", options->megabytes, "size of the bench text")->capture_default_str();
      cmd.add_option("--repeat", options->repeat, "encodes per tokenizer (best is reported)")
          ->capture_default_str()
          ->check(CLI::PositiveNumber);
      cmd.add_option("--yardstick-dir", options->yardstick_dir, "folder of yardstick.mjs")->capture_default_str();
      cmd.add_flag("--no-yardstick", options->no_yardstick, "skip the @lenml/tokenizers comparison");
      return [options] { return run_bench(*options); };
    });

}  // namespace
}  // namespace troupe::cli
