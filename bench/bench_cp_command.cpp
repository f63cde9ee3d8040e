// `troupe bench cp`: what context parallelism buys a long prompt on this machine — time to first
// token (one prefill step of the whole prompt) at cp = 1 and cp = 2 by ring attention and by Ulysses,
// on the same cores (cp = 1 gets them all as threads; each cp rank gets its share), with the
// exchanges' bytes and time per rank; then a projection to more ranks, each with as many cores as
// one rank here, from the measured single-core compute time and the measured transfer rate.
//
//   troupe bench cp [--model DIR] [--prompt-tokens 4096] [--rounds 3]
//
// Without --model it writes the "long-context" preset (random weights) to a temporary folder.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "actors/local_group_executor.hpp"
#include "cli/command_registry.hpp"
#include "cli/progress.hpp"
#include "kernels/error.hpp"
#include "kernels/thread_pool.hpp"
#include "model/model_presets.hpp"

namespace troupe::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchCpOptions {
  std::string model;
  int64_t prompt_tokens = 4096;
  int rounds = 3;
};

struct Layout {
  const char* name;
  int cp, ring, ulysses, threads_per_rank;
};

struct Measured {
  double ttft = 0;              // median over rounds, seconds
  double exchange_seconds = 0;  // per step: the least any rank spent in ring/ulysses exchanges
  double exchange_bytes = 0;    // per step: the most any rank sent
};

ForwardBatch prompt_batch(const ModelConfig& cfg, int64_t tokens, int64_t block_size) {
  std::mt19937 rng{2026};
  std::uniform_int_distribution<int32_t> token(3, int32_t(cfg.vocab_size) - 1);
  ForwardBatch b;
  b.attention.block_size = block_size;
  b.attention.block_tables.push_back({});
  for (int32_t i = 0; i < int32_t((tokens + block_size - 1) / block_size); ++i)
    b.attention.block_tables[0].push_back(i);
  for (int64_t t = 0; t < tokens; ++t) {
    b.token_ids.push_back(t == 0 ? 1 : token(rng));
    b.attention.positions.push_back(int32_t(t));
    b.attention.sequence_of_token.push_back(0);
  }
  b.logit_rows.push_back(tokens - 1);
  return b;
}

Measured measure(const std::filesystem::path& model, const Layout& l, const BenchCpOptions& o) {
  LocalGroupOptions g;
  g.cp = l.cp, g.ring_degree = l.ring, g.ulysses_degree = l.ulysses, g.threads_per_rank = l.threads_per_rank;
  g.kv.block_size = 16;
  g.kv.num_blocks = (o.prompt_tokens + 15) / 16 + 1;
  LocalGroupExecutor ex(model, g);
  const ForwardBatch batch = prompt_batch(ex.config(), o.prompt_tokens, ex.kv_block_size());
  ex.execute(batch);  // warm-up: first touch of the weights and the cache
  std::vector<double> times;
  Measured m;
  for (int r = 0; r < o.rounds; ++r) {
    ex.reset_counters();
    const auto t0 = Clock::now();
    ex.execute(batch);
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    double least = 1e300, most = 0;
    for (const auto& s : ex.rank_stats())
      least = std::min(least, s.context_parallel.seconds), most = std::max(most, double(s.context_parallel.bytes_sent));
    m.exchange_seconds += least / o.rounds;
    m.exchange_bytes = most;
  }
  std::sort(times.begin(), times.end());
  m.ttft = times[times.size() / 2];
  return m;
}

int run_bench_cp(const BenchCpOptions& o) {
  if (o.prompt_tokens < 16 || o.rounds < 1) fail("bench cp: --prompt-tokens must be >= 16 and --rounds >= 1");
  std::filesystem::path model = o.model;
  std::filesystem::path scratch;
  if (model.empty()) {
    scratch = std::filesystem::temp_directory_path() / fmt::format("troupe-bench-cp-{}", ::getpid());
    Progress writing("writing the long-context preset");
    write_random_model("long-context", scratch, DType::F32, 7,
                       [&](int64_t done, int64_t total) { writing.update(done, total); });
    writing.finish();
    model = scratch;
  }
  const int cores = ThreadPool::default_thread_count();
  const int per_rank = std::max(1, cores / 2);
  const std::vector<Layout> layouts = {{"cp 1, one core", 1, 1, 1, 1},
                                       {"cp 1", 1, 1, 1, cores},
                                       {"cp 2 ring", 2, 2, 1, per_rank},
                                       {"cp 2 ulysses", 2, 1, 2, per_rank}};
  std::printf("bench cp: %s, one prefill of %lld tokens, median of %d rounds, %d cores\n", model.c_str(),
              (long long)o.prompt_tokens, o.rounds, cores);
  std::vector<Measured> results;
  Progress progress("layouts");
  for (size_t i = 0; i < layouts.size(); ++i) {
    results.push_back(measure(model, layouts[i], o));
    progress.update(int64_t(i + 1), int64_t(layouts.size()));
  }
  progress.finish();
  std::printf(
      "\n| layout | threads per rank | time to first token (s) | vs cp 1 | exchanges per rank (s) | share | sent per "
      "rank (MiB) |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- |\n");
  const double base = results[1].ttft;
  for (size_t i = 0; i < layouts.size(); ++i) {
    const auto& m = results[i];
    std::printf("| %s | %d | %.3f | %.2fx | %.3f | %.1f%% | %.1f |\n", layouts[i].name, layouts[i].threads_per_rank,
                m.ttft, base / m.ttft, m.exchange_seconds, 100.0 * m.exchange_seconds / m.ttft,
                m.exchange_bytes / double(1 << 20));
  }
  // Projection to cp ranks of one core each (as here): compute divides by cp (the zig-zag split gives
  // every rank the same attention work, the projections and MLP split exactly); transfers are the
  // bytes a rank sends at that cp (scaled from cp 2: ring sends (r-1)/r of the sequence's K/V, Ulysses
  // (u-1)/u^2 of it in q, k, v and output) at the transfer rate measured here. Ulysses waits for its
  // exchanges; ring overlaps them with attention, so its time lies between max(compute, transfer)
  // (fully hidden) and compute + transfer (nothing hidden).
  const double one_core = results[0].ttft;
  auto rate_of = [](const Measured& m) { return m.exchange_seconds > 0 ? m.exchange_bytes / m.exchange_seconds : 0.0; };
  const double ring_rate = rate_of(results[2]), ulysses_rate = rate_of(results[3]);
  std::printf("\nmeasured: %.3f s on one core; transfer rate per rank %.2f GB/s (ring), %.2f GB/s (ulysses)\n",
              one_core, ring_rate / 1e9, ulysses_rate / 1e9);
  std::printf(
      "\nprojection, one core per rank:\n| cp | compute (s) | ring transfer (s) | ring TTFT (s) | "
      "ulysses exchanges (s) | ulysses TTFT (s) |\n| --- | --- | --- | --- | --- | --- |\n");
  for (int cp : {1, 2, 4, 8}) {
    const double compute = one_core / cp;
    const double ring = cp > 1 && ring_rate > 0 ? results[2].exchange_bytes * 2.0 * (cp - 1) / cp / ring_rate : 0;
    const double ulysses =
        cp > 1 && ulysses_rate > 0 ? results[3].exchange_bytes * 4.0 * (cp - 1) / (double(cp) * cp) / ulysses_rate : 0;
    std::printf("| %d | %.3f | %.3f | %.3f .. %.3f | %.3f | %.3f |\n", cp, compute, ring, std::max(compute, ring),
                compute + ring, ulysses, compute + ulysses);
  }
  if (!scratch.empty()) std::filesystem::remove_all(scratch);
  return 0;
}

TROUPE_BENCH("cp", "context parallelism: time to first token of a long prompt, ring vs Ulysses, and a projection",
             [](CLI::App& cmd) -> std::function<int()> {
               auto o = std::make_shared<BenchCpOptions>();
               cmd.add_option("--model", o->model, "model folder (default: the long-context preset, random weights)");
               cmd.add_option("--prompt-tokens", o->prompt_tokens, "prompt length")->capture_default_str();
               cmd.add_option("--rounds", o->rounds, "timed prefills per layout (the median is reported)")
                   ->capture_default_str();
               return [o] { return run_bench_cp(*o); };
             });

}  // namespace
}  // namespace troupe::cli
