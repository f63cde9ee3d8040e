// Pipeline-parallel throughput experiment through the library API: launches real clusters (one
// process per rank) with simulated stages, measures each depth, and writes CSV, Chrome traces and
// plots. `troupe bench pp` is the same harness with every knob on the command line.
//
//   build/bin/pp_throughput --troupe build/bin/troupe --out out/pp --pp 1,2,4,8
#include <CLI/CLI.hpp>

#include <cstdio>

#include "bench/throughput_experiment.hpp"
#include "kernels/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"pipeline-parallel throughput with simulated stages"};
  troupe::ExperimentOptions options;
  std::string troupe_binary = "build/bin/troupe", out = "out/pp";
  std::vector<int> depths = {1, 2, 4, 8};
  int batch = 48;
  app.add_option("--troupe", troupe_binary, "the troupe executable")->capture_default_str();
  app.add_option("--out", out, "output folder")->capture_default_str();
  app.add_option("--pp", depths, "pipeline depths")->delimiter(',')->capture_default_str();
  app.add_option("--batch", batch, "concurrent requests")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  options.troupe_binary = troupe_binary;
  options.out_dir = out;
  options.simulate = true;
  options.fixed_ms = 1.0;       // whole-model step: a little fixed cost ...
  options.per_token_ms = 10.0;  // ... and compute that grows with the tokens (a compute-bound stage)
  options.output_len = 32;
  for (int pp : depths) options.points.push_back({1, pp, 0, batch});  // micro-batches = pp
  try {
    auto runs = troupe::run_throughput_experiment(
        options, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
    std::printf("%s", troupe::format_metrics_table(runs).c_str());
    for (const auto& f : troupe::write_plots(runs, out)) std::printf("plot: %s\n", f.string().c_str());
  } catch (const troupe::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
