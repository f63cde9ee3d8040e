// `troupe bench moe`: what expert parallelism costs and how evenly the experts are used, on a
// mixture-of-experts model folder — all_to_all traffic and time per step for the reference
// prompts (greedy generation, the decode-heavy case) and for one large prefill step, and the load
// imbalance (max/mean tokens per expert, per layer; tokens per expert-parallel rank).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "actors/local_group_executor.hpp"
#include "cli/command_registry.hpp"
#include "kernels/error.hpp"
#include "sched/batch_generator.hpp"
#include "sched/kv_block_manager.hpp"

namespace troupe::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchMoeOptions {
  std::string model;
  int ep = 2, pp = 1;
  int tp = 0;  // 0: tp = ep / dp (with ep 1 and tp > 1 the experts are tensor-parallel instead)
  int dp = 1;  // replicas: ep = tp x dp puts the experts over all of them (data-parallel attention)
  std::string replicate;
  int64_t prefill_sequences = 4, prefill_tokens = 128;
};

// Counts and times the steps a BatchGenerator runs.
class CountingExecutor : public ModelExecutor {
 public:
  explicit CountingExecutor(ModelExecutor& inner) : inner_(inner) {}
  const ModelConfig& config() const override { return inner_.config(); }
  int64_t num_kv_blocks() const override { return inner_.num_kv_blocks(); }
  int64_t kv_block_size() const override { return inner_.kv_block_size(); }
  Tensor execute(const ForwardBatch& batch) override {
    auto t0 = Clock::now();
    Tensor out = inner_.execute(batch);
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    ++steps;
    return out;
  }
  int64_t steps = 0;
  double seconds = 0;

 private:
  ModelExecutor& inner_;
};

std::vector<GenerationRequest> reference_requests(const std::string& model) {
  std::ifstream in(std::filesystem::path(model) / "reference.json");
  if (!in) fail("bench moe: {} has no reference.json (its prompts are what the bench runs)", model);
  auto j = nlohmann::json::parse(in);
  std::vector<GenerationRequest> requests;
  for (const auto& c : j.at("cases")) {
    GenerationRequest r;
    r.prompt_ids = c.at("prompt_ids").get<std::vector<int32_t>>();
    r.max_tokens = int64_t(c.at("greedy_ids").size());
    r.ignore_eos = true;
    requests.push_back(r);
  }
  return requests;
}

// One prefill step of random tokens: `sequences` x `tokens`.
void run_prefill(ModelExecutor& ex, int64_t sequences, int64_t tokens) {
  KvBlockManager blocks(ex.num_kv_blocks(), ex.kv_block_size());
  std::mt19937 rng{7};
  std::uniform_int_distribution<int32_t> token(3, int32_t(ex.config().vocab_size) - 1);
  ForwardBatch batch;
  batch.attention.block_size = ex.kv_block_size();
  for (int64_t s = 0; s < sequences; ++s) {
    if (!blocks.reserve(s, tokens))
      fail("bench moe: the kv cache cannot hold {} x {} prefill tokens", sequences, tokens);
    batch.attention.block_tables.push_back(blocks.block_table(s));
    for (int64_t p = 0; p < tokens; ++p) {
      batch.token_ids.push_back(token(rng));
      batch.attention.positions.push_back(int32_t(p));
      batch.attention.sequence_of_token.push_back(int32_t(s));
    }
    batch.logit_rows.push_back(batch.num_tokens() - 1);
  }
  ex.execute(batch);
}

// all_to_all per step: calls per rank, bytes crossing between ranks (all ranks), seconds on the busiest rank.
void print_all_to_all(const LocalGroupExecutor& ex, int64_t steps, double step_seconds) {
  int64_t bytes = 0, calls = 0;
  double busiest = 0, collectives = 0;
  for (const auto& r : ex.rank_stats()) {
    bytes += r.all_to_all.bytes_sent;
    calls = std::max(calls, r.all_to_all.calls);
    busiest = std::max(busiest, r.all_to_all.seconds);
    collectives = std::max(collectives, r.collective_seconds);
  }
  const double n = double(std::max<int64_t>(steps, 1));
  std::printf(
      "  step time %.3f ms; all_to_all: %.1f calls/step per rank, %.0f bytes/step between ranks, %.3f ms/step "
      "(busiest rank, %.0f%% of the step); all tp collectives %.3f ms/step\n",
      1e3 * step_seconds / n, double(calls) / n, double(bytes) / n, 1e3 * busiest / n, 100.0 * busiest / step_seconds,
      1e3 * collectives / n);
}

// max/mean of the tokens each ep rank's experts ran (replicated experts spread evenly: they run at home).
double rank_imbalance(const std::vector<int64_t>& per_expert, int ep, const std::vector<int64_t>& replicated) {
  const int64_t E = int64_t(per_expert.size());
  std::vector<double> rank_load(size_t(ep), 0.0);
  for (int64_t e = 0; e < E; ++e) {
    bool rep = std::find(replicated.begin(), replicated.end(), e) != replicated.end();
    for (int r = 0; r < ep; ++r)
      if (rep || e / (E / ep) == r) rank_load[size_t(r)] += double(per_expert[size_t(e)]) / (rep ? ep : 1);
  }
  double sum = std::accumulate(rank_load.begin(), rank_load.end(), 0.0);
  return *std::max_element(rank_load.begin(), rank_load.end()) / (sum / ep);
}

double expert_imbalance(const std::vector<int64_t>& per_expert) {
  int64_t sum = std::accumulate(per_expert.begin(), per_expert.end(), int64_t(0));
  return double(*std::max_element(per_expert.begin(), per_expert.end())) / (double(sum) / double(per_expert.size()));
}

void print_load(const std::vector<std::vector<int64_t>>& load, int ep, const std::vector<int64_t>& replicated) {
  if (load.empty()) return;
  double expert_mean = 0, rank_mean = 0;
  for (size_t l = 0; l < load.size(); ++l) {
    const std::string counts = fmt::format("{}", fmt::join(load[l], " "));
    const double by_expert = expert_imbalance(load[l]), by_rank = rank_imbalance(load[l], ep, replicated);
    expert_mean += by_expert / double(load.size());
    rank_mean += by_rank / double(load.size());
    std::printf("  layer %zu: tokens per expert [%s], max/mean %.2f per expert, %.2f per ep rank\n", l, counts.c_str(),
                by_expert, by_rank);
  }
  std::printf("  mean over layers: max/mean tokens %.2f per expert, %.2f per ep rank (ep %d)\n", expert_mean, rank_mean,
              ep);
}

int run_bench_moe(const BenchMoeOptions& o) {
  LocalGroupOptions group;
  group.tp = o.tp > 0 ? o.tp : std::max(1, o.ep / std::max(1, o.dp));
  group.ep = o.ep;
  group.dp = o.dp;
  group.pp = o.pp;
  if (!o.replicate.empty())
    for (int e : parse_id_list(o.replicate, "--replicate")) group.replicated_experts.push_back(e);
  LocalGroupExecutor ex(o.model, group);
  if (!ex.config().is_moe()) fail("bench moe: {} is a dense model ({})", o.model, ex.config().model_type);
  auto requests = reference_requests(o.model);
  std::printf("model %s (%s, %lld experts, top-%lld), ep %d (tp %d x pp %d x dp %d ranks as threads)%s\n",
              o.model.c_str(), ex.config().model_type.c_str(), (long long)ex.config().num_experts,
              (long long)ex.config().num_experts_per_tok, o.ep, group.tp, o.pp, o.dp,
              o.replicate.empty() ? "" : fmt::format(", replicated experts {}", o.replicate).c_str());
  CountingExecutor counted(ex);
  BatchGenerator(counted).run(requests);  // warm up
  ex.reset_counters();
  counted.steps = 0, counted.seconds = 0;
  auto results = BatchGenerator(counted).run(requests);
  int64_t generated = 0;
  for (const auto& r : results) generated += int64_t(r.ids.size());
  std::printf("reference prompts: %zu requests, %lld tokens generated in %lld steps: %.1f tokens/s\n", requests.size(),
              (long long)generated, (long long)counted.steps, double(generated) / counted.seconds);
  print_all_to_all(ex, counted.steps, counted.seconds);
  // One request alone: under dp > 1 the other replicas step with empty batches (the lockstep's cost).
  ex.reset_counters();
  counted.steps = 0, counted.seconds = 0;
  const auto alone = BatchGenerator(counted).run({requests.front()});
  std::printf("one request alone%s: %zu tokens in %lld steps: %.1f tokens/s\n",
              o.dp > 1 ? " (the other replicas step empty)" : "", alone[0].ids.size(), (long long)counted.steps,
              double(alone[0].ids.size()) / counted.seconds);
  print_all_to_all(ex, counted.steps, counted.seconds);
  print_load(ex.expert_load(), o.ep, group.replicated_experts);

  run_prefill(counted, o.prefill_sequences, o.prefill_tokens);  // warm up this shape
  ex.reset_counters();
  counted.steps = 0, counted.seconds = 0;
  for (int i = 0; i < 3; ++i) run_prefill(counted, o.prefill_sequences, o.prefill_tokens);
  std::printf("prefill: 3 steps of %lld x %lld random tokens (the same each time)\n", (long long)o.prefill_sequences,
              (long long)o.prefill_tokens);
  print_all_to_all(ex, counted.steps, counted.seconds);
  print_load(ex.expert_load(), o.ep, group.replicated_experts);
  return 0;
}

TROUPE_BENCH(
    "moe", "expert parallelism: all_to_all bytes and time per step, and expert load imbalance",
    [](CLI::App& cmd) -> std::function<int()> {
      auto o = std::make_shared<BenchMoeOptions>();
      cmd.add_option("--model", o->model, "mixture-of-experts model folder with reference.json")->required();
      cmd.add_option("--ep", o->ep, "expert-parallel ranks (= tp ranks, threads); 1: experts on one rank")
          ->capture_default_str();
      cmd.add_option("--tp", o->tp,
                     "tensor-parallel ranks (default: --ep); --tp 2 --ep 1 splits every expert over tp instead");
      cmd.add_option("--pp", o->pp, "pipeline stages")->capture_default_str();
      cmd.add_option("--dp", o->dp, "data-parallel replicas; --ep = --tp x --dp spreads the experts over all of them")
          ->capture_default_str();
      cmd.add_option("--replicate", o->replicate, "routed experts every ep rank holds and runs locally, e.g. 0,5");
      cmd.add_option("--prefill-sequences", o->prefill_sequences, "sequences in the prefill step")
          ->capture_default_str();
      cmd.add_option("--prefill-tokens", o->prefill_tokens, "tokens per prefill sequence")->capture_default_str();
      return [o] { return run_bench_moe(*o); };
    });

}  // namespace
}  // namespace troupe::cli
