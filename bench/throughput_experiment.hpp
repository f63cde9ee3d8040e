#pragma once
// Pipeline-parallel throughput experiments: launch real clusters from generated node configs (one
// node process per rank), drive a workload through the client API, and measure what pipelining
// buys — throughput, latency percentiles, per-stage busy and bubble fractions against the ideal
// for the schedule — with each run's timeline of which micro-batch each stage ran when.
//
// Simulated mode replaces every stage's compute by a cost model (the actors, scheduling and UCX
// transfers stay real), so pp up to 16 can be studied on a 2-core machine.
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "actors/messages.hpp"

namespace troupe {

struct ExperimentPoint {
  int tp = 1, pp = 1;
  int micro_batches = 0;  // 0 = pp
  int batch = 32;         // concurrent requests
};

struct ExperimentOptions {
  std::filesystem::path model;          // real mode: the checkpoint; simulated: config.json shapes (may be empty)
  std::filesystem::path troupe_binary;  // the `troupe` executable that runs the clusters
  std::filesystem::path out_dir;        // CSV, traces, plots
  std::vector<ExperimentPoint> points;
  int prompt_len = 16, prompt_len_max = 0;  // prompt length, uniform in [prompt_len, prompt_len_max] when max > len
  int output_len = 32, output_len_max = 0;  // likewise for output
  uint64_t seed = 1;
  bool simulate = false;
  double fixed_ms = 20.0, per_token_ms = 0.2;  // whole-model step cost in simulated mode
  bool busy_wait = false;
  std::chrono::milliseconds timeout{600000};
};

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0;
};
Percentiles percentiles(std::vector<double> values);  // nearest rank; all 0 when empty

struct RunMetrics {
  ExperimentPoint point;
  int micro_batches = 0;  // effective
  double seconds = 0;     // first submit to last finish
  int64_t output_tokens = 0, requests = 0;
  double output_tokens_per_s = 0;  // whole run
  double steady_tokens_per_s = 0;  // slope over the middle 80% of the token events
  double requests_per_s = 0;
  Percentiles ttft_ms, tpot_ms;
  std::vector<double> stage_busy;  // per stage, over the steady window
  double bubble_fraction = 0;      // 1 - mean stage busy
  double ideal_busy = 1.0;         // steady continuous decoding: min(1, micro_batches / pp)
  double gpipe_ideal = 1.0;        // m / (m + p - 1) for one batch of m micro-batches
  double measured_over_ideal = 0;  // mean busy / ideal busy
  double speedup_vs_pp1 = 0;       // steady throughput / the same point's pp=1 throughput (0: none run)
  std::string trace_file;
  std::vector<StepResult> timeline;
};

// Runs every point (progress: one line per run). Throws troupe::Error when a cluster fails.
std::vector<RunMetrics> run_throughput_experiment(const ExperimentOptions& options,
                                                  const std::function<void(const std::string&)>& progress);

void write_metrics_csv(const std::vector<RunMetrics>& runs, const std::filesystem::path& path);
// Chrome trace JSON (opens in Perfetto / chrome://tracing): one process per stage, one thread per tp rank.
void write_chrome_trace(const RunMetrics& run, const std::filesystem::path& path);
// PNG plots with gnuplot: throughput and efficiency vs pp and vs micro-batches, latency
// percentiles, and a Gantt chart per run. Returns the files written (none without gnuplot).
std::vector<std::filesystem::path> write_plots(const std::vector<RunMetrics>& runs,
                                               const std::filesystem::path& out_dir);
std::string format_metrics_table(const std::vector<RunMetrics>& runs);

}  // namespace troupe
