// `troupe bench pp`: pipeline-parallel throughput sweeps over real clusters (see
// bench/throughput_experiment.hpp and docs/pipeline-experiments.md).
#include <cstdio>

#include "bench/throughput_experiment.hpp"
#include "cli/command_registry.hpp"
#include "kernels/error.hpp"

namespace troupe::cli {
namespace {

struct BenchPpOptions {
  ExperimentOptions e;  // the workload and cost-model knobs bind to it directly
  std::string model, out = "out/pp";
  std::string pp = "1,2,4", micro_batches = "p", batch = "32", tp = "1";
  bool plots = true;
};

// "--micro-batches 1,p,p+1": absolute counts, or relative to each point's pp.
std::vector<int> micro_batches_for(const std::string& spec, int pp) {
  std::vector<int> out;
  size_t pos = 0;
  while (pos <= spec.size()) {
    size_t comma = spec.find(',', pos);
    std::string item = spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (item == "p")
      out.push_back(pp);
    else if (item.rfind("p+", 0) == 0)
      out.push_back(pp + parse_id_list(item.substr(2), "--micro-batches").at(0));
    else
      out.push_back(parse_id_list(item, "--micro-batches").at(0));
    if (out.back() < 1) fail("--micro-batches: '{}' gives {} micro-batches (expected at least 1)", item, out.back());
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

int run_bench_pp(const BenchPpOptions& o) {
  ExperimentOptions e = o.e;
  e.model = o.model;
  if (e.model.empty() && !e.simulate) fail("--model is required unless --simulate");
  e.troupe_binary = "/proc/self/exe";
  e.out_dir = o.out;
  for (int tp : parse_id_list(o.tp, "--tp"))
    for (int batch : parse_id_list(o.batch, "--batch"))
      for (int pp : parse_id_list(o.pp, "--pp"))
        for (int mb : micro_batches_for(o.micro_batches, pp)) {
          if (pp < 1 || tp < 1 || batch < 1) fail("tp, pp and batch must be at least 1");
          if (pp == 1 && mb > 1) continue;  // one stage: one micro-batch in flight
          bool seen = false;
          for (const auto& p : e.points) seen |= p.tp == tp && p.pp == pp && p.micro_batches == mb && p.batch == batch;
          if (!seen) e.points.push_back({tp, pp, mb, batch});
        }
  auto runs = run_throughput_experiment(e, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
  std::printf("%s", format_metrics_table(runs).c_str());
  std::printf("wrote %s/pp_throughput.csv and one Chrome trace per run (*.trace.json, open in Perfetto)\n",
              o.out.c_str());
  if (o.plots) {
    auto files = write_plots(runs, o.out);
    if (files.empty()) std::printf("gnuplot not found: no PNG plots\n");
    for (const auto& f : files) std::printf("plot: %s\n", f.string().c_str());
  }
  return 0;
}

TROUPE_BENCH(
    "pp", "pipeline-parallel throughput sweep over real clusters (pp, micro-batches, batch, tp)",
    [](CLI::App& cmd) -> std::function<int()> {
      auto o = std::make_shared<BenchPpOptions>();
      cmd.add_option("--model", o->model, "model folder (real mode; optional with --simulate)");
      cmd.add_option("--out", o->out, "output folder for CSV, traces and plots")->capture_default_str();
      cmd.add_option("--pp", o->pp, "pipeline depths, comma-separated")->capture_default_str();
      cmd.add_option("--micro-batches", o->micro_batches,
                     "micro-batches in flight: counts, p (= pp) or p+N, comma-separated")
          ->capture_default_str();
      cmd.add_option("--batch", o->batch, "concurrent requests, comma-separated")->capture_default_str();
      cmd.add_option("--tp", o->tp, "tensor-parallel sizes, comma-separated")->capture_default_str();
      cmd.add_option("--prompt-len", o->e.prompt_len, "prompt tokens (or the minimum with --prompt-len-max)")
          ->capture_default_str();
      cmd.add_option("--prompt-len-max", o->e.prompt_len_max, "uniform prompt lengths up to this");
      cmd.add_option("--output-len", o->e.output_len, "output tokens (or the minimum)")->capture_default_str();
      cmd.add_option("--output-len-max", o->e.output_len_max, "uniform output lengths up to this");
      cmd.add_flag("--simulate", o->e.simulate,
                   "replace stage compute by a cost model (actors, scheduling, UCX stay real)");
      cmd.add_option("--fixed-ms", o->e.fixed_ms, "simulated whole-model step cost")->capture_default_str();
      cmd.add_option("--per-token-ms", o->e.per_token_ms, "simulated cost per token of a step")->capture_default_str();
      cmd.add_flag("--busy", o->e.busy_wait, "simulated stages spin instead of sleeping");
      cmd.add_option("--seed", o->e.seed, "workload seed")->capture_default_str();
      cmd.add_flag("!--no-plots", o->plots, "skip the gnuplot PNGs");
      return [o] { return run_bench_pp(*o); };
    });

}  // namespace
}  // namespace troupe::cli
