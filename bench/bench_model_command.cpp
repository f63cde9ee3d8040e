// `troupe bench model`: prefill and decode throughput of a model folder on this machine, with the
// machine's memory read bandwidth measured in the same run as the decode roofline yardstick.
#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>

#include "actors/local_group_executor.hpp"
#include "bench/memory_bandwidth.hpp"
#include "cli/command_registry.hpp"
#include "cli/progress.hpp"
#include "kernels/cpu_features.hpp"
#include "kernels/error.hpp"
#include "kernels/thread_pool.hpp"
#include "sched/kv_block_manager.hpp"

namespace troupe::cli {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct BenchModelOptions {
  std::string model;
  int64_t prompt_tokens = 128;
  int64_t decode_steps = 16;
  std::vector<int64_t> batches = {1, 16};
  int tp = 1, pp = 1;
  std::string quantize;
};

// Resident set size of this process (bytes), from /proc/self/statm.
double resident_bytes() {
  long pages = 0, resident = 0;  // both stay 0 when the file cannot be read
  std::ifstream("/proc/self/statm") >> pages >> resident;
  return double(resident) * double(sysconf(_SC_PAGESIZE));
}

// Runs `batch` sequences: one prefill of prompt_tokens each, then decode_steps decode steps.
// Returns {prefill seconds, decode seconds}.
std::pair<double, double> run_batch(ModelExecutor& ex, int64_t batch, const BenchModelOptions& o, uint64_t seed) {
  const auto& cfg = ex.config();
  KvBlockManager blocks(ex.num_kv_blocks(), ex.kv_block_size());
  std::mt19937 rng{static_cast<uint32_t>(seed)};
  std::uniform_int_distribution<int32_t> token(3, int32_t(cfg.vocab_size) - 1);
  ForwardBatch prefill;
  prefill.attention.block_size = ex.kv_block_size();
  for (int64_t s = 0; s < batch; ++s) {
    if (!blocks.reserve(s, o.prompt_tokens + o.decode_steps)) fail("bench: kv cache too small for batch {}", batch);
    prefill.attention.block_tables.push_back(blocks.block_table(s));
    for (int64_t p = 0; p < o.prompt_tokens; ++p) {
      prefill.token_ids.push_back(token(rng));
      prefill.attention.positions.push_back(int32_t(p));
      prefill.attention.sequence_of_token.push_back(int32_t(s));
    }
    prefill.logit_rows.push_back(prefill.num_tokens() - 1);
  }
  auto t0 = Clock::now();
  ex.execute(prefill);
  double prefill_s = seconds_since(t0);
  ForwardBatch decode;
  decode.attention.block_size = ex.kv_block_size();
  decode.attention.block_tables = prefill.attention.block_tables;
  for (int64_t s = 0; s < batch; ++s) {
    decode.token_ids.push_back(token(rng));
    decode.attention.positions.push_back(int32_t(o.prompt_tokens));
    decode.attention.sequence_of_token.push_back(int32_t(s));
    decode.logit_rows.push_back(s);
  }
  t0 = Clock::now();
  for (int64_t step = 0; step < o.decode_steps; ++step) {
    ex.execute(decode);
    for (auto& p : decode.attention.positions) ++p;
  }
  return {prefill_s, seconds_since(t0)};
}

int run_bench_model(const BenchModelOptions& o) {
  std::printf("threads: %d, cpu: %s\n", ThreadPool::current().size(), CpuFeatures::get().describe().c_str());
  double bandwidth = measure_read_bandwidth();
  std::printf("memory read bandwidth: %.2f GB/s\n", bandwidth / 1e9);
  Progress progress("loading layers");
  LocalGroupOptions group;
  group.tp = o.tp;
  group.pp = o.pp;
  group.kv.budget_bytes = 1ll << 30;
  group.quantize = parse_weight_format(o.quantize);
  LocalGroupExecutor ex(o.model, group, [&](int64_t d, int64_t t) { progress.update(d, t); });
  progress.finish();
  const auto& cfg = ex.config();
  double weight_bytes = 0, bytes_per_token = 0, kv_bytes = 0;
  for (const auto& r : ex.rank_stats()) {
    weight_bytes += double(r.weight_bytes);
    kv_bytes += double(r.kv_cache_bytes);
    std::printf("rank %d: %.3f GB of weights\n", r.rank, double(r.weight_bytes) / 1e9);
  }
  bytes_per_token = double(ex.decode_bytes_per_step());
  std::printf(
      "process resident memory after load: %.2f GB, less the KV caches: %.2f GB (tp %d x pp %d ranks as threads)\n",
      resident_bytes() / 1e9, (resident_bytes() - kv_bytes) / 1e9, o.tp, o.pp);
  double roofline = bandwidth / bytes_per_token;
  std::printf("model: %s (%s%s%s, %lld layers, hidden %lld), weights %.2f GB, %.2f GB read per decode step\n",
              o.model.c_str(), cfg.torch_dtype.c_str(), o.quantize.empty() ? "" : ", quantized ", o.quantize.c_str(),
              (long long)cfg.num_hidden_layers, (long long)cfg.hidden_size, weight_bytes / 1e9, bytes_per_token / 1e9);
  std::printf("decode roofline (bandwidth / bytes per step): %.2f steps/s\n", roofline);
  BenchModelOptions warmup = o;
  warmup.prompt_tokens = 8;
  warmup.decode_steps = 2;
  run_batch(ex, 1, warmup, 1);  // page in the weights
  for (int64_t batch : o.batches) {
    ex.reset_counters();
    auto [prefill_s, decode_s] = run_batch(ex, batch, o, uint64_t(batch));
    double collective_s = 0;
    for (const auto& r : ex.rank_stats()) collective_s = std::max(collective_s, r.collective_seconds);
    double prefill_tps = double(batch * o.prompt_tokens) / prefill_s;
    double steps_per_s = double(o.decode_steps) / decode_s;
    std::printf(
        "batch %3lld: prefill %8.1f tokens/s (%lld x %lld tokens) | decode %7.2f tokens/s (%.2f steps/s, %.0f%% of "
        "roofline)\n",
        (long long)batch, prefill_tps, (long long)batch, (long long)o.prompt_tokens, steps_per_s * double(batch),
        steps_per_s, 100.0 * steps_per_s / roofline);
    if (o.tp > 1)
      std::printf("           tp collectives: %.1f ms per step on the busiest rank (%.0f%% of the run)\n",
                  1e3 * collective_s / double(o.decode_steps + 1), 100.0 * collective_s / (prefill_s + decode_s));
  }
  return 0;
}

TROUPE_BENCH("model", "prefill and decode tokens/s of a model folder, against the memory-bandwidth roofline",
             [](CLI::App& cmd) -> std::function<int()> {
               auto o = std::make_shared<BenchModelOptions>();
               cmd.add_option("--model", o->model,
                              "model folder or GGUF file (e.g. from troupe make-model --preset llama-3.2-1b)")
                   ->required();
               cmd.add_option("--prompt-tokens", o->prompt_tokens, "prompt length for prefill")->capture_default_str();
               cmd.add_option("--decode-steps", o->decode_steps, "decode steps timed")->capture_default_str();
               cmd.add_option("--batch", o->batches, "batch sizes")->capture_default_str();
               cmd.add_option("--tp", o->tp, "tensor-parallel ranks (threads)")->capture_default_str();
               cmd.add_option("--pp", o->pp, "pipeline stages (threads)")->capture_default_str();
               cmd.add_option("--quantize", o->quantize, "quantize the float linear weights at load: q8_0 or q4_0");
               return [o] { return run_bench_model(*o); };
             });

}  // namespace
}  // namespace troupe::cli
