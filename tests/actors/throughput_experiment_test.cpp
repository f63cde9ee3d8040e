// The pipeline experiment harness on a small simulated sweep: every request's tokens are counted,
// the timeline covers every stage, and the CSV / Chrome trace files hold what they claim. (Speed
// itself is shown by `troupe bench pp`, not asserted here.)
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "bench/throughput_experiment.hpp"
#include "tests/test_paths.hpp"

using namespace troupe;

TEST_CASE("a simulated pp sweep measures every request and records every stage") {
  ExperimentOptions o;
  o.troupe_binary = test::binary_dir() / "troupe";
  o.out_dir = std::filesystem::temp_directory_path() / ("troupe_pp_experiment_" + std::to_string(::getpid()));
  o.simulate = true;
  o.fixed_ms = 0.5;
  o.per_token_ms = 0.5;
  o.prompt_len = 4;
  o.output_len = 6;
  o.points = {{1, 1, 0, 6}, {1, 3, 0, 6}, {1, 3, 1, 6}};
  std::vector<std::string> progress;
  auto runs = run_throughput_experiment(o, [&](const std::string& line) { progress.push_back(line); });
  REQUIRE(runs.size() == 3);
  CHECK(progress.size() == 6);  // a line before and after each run
  for (const auto& r : runs) {
    CHECK(r.requests == 6);
    CHECK(r.output_tokens == 6 * 6);
    CHECK(r.stage_busy.size() == size_t(r.point.pp));
    std::set<int> ranks;
    for (const auto& s : r.timeline) ranks.insert(s.rank);
    CHECK(int(ranks.size()) == r.point.pp);  // every stage reported its steps
    CHECK(r.ttft_ms.p50 > 0);
    CHECK(r.ttft_ms.p50 <= r.ttft_ms.p99);
    std::ifstream trace(r.trace_file);
    auto events = nlohmann::json::parse(trace)["traceEvents"];
    int compute = 0;
    for (const auto& e : events) compute += e.value("cat", "") == "compute";
    CHECK(compute == int(r.timeline.size()));
  }
  CHECK(runs[1].micro_batches == 3);
  CHECK(runs[2].micro_batches == 1);
  CHECK(runs[2].ideal_busy == doctest::Approx(1.0 / 3));
  CHECK(runs[1].gpipe_ideal == doctest::Approx(3.0 / 5));
  CHECK(runs[1].speedup_vs_pp1 > 0);
  std::ifstream csv(o.out_dir / "pp_throughput.csv");
  std::string line;
  int rows = 0;
  while (std::getline(csv, line)) ++rows;
  CHECK(rows == 4);
  std::filesystem::remove_all(o.out_dir);
}
