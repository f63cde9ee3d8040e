// `troupe bench tls`: what mutual TLS costs the control plane. Two real clusters (`troupe cluster`:
// head + two node processes, pp = 2, on loopback) from the same model, one in cleartext and one with
// [tls]; the same load alternates between them round by round:
//   submit  one request with max_tokens = 1, submitted and awaited back to back (client -> engine
//           -> coordinator -> both ranks -> client: the round trips a request adds);
//   decode  one request of --decode-tokens tokens at batch 1: each token is one step (the coordinator
//           sends both ranks a StepRequest and takes their results over the node links).
// Prints per-request and per-step medians for both and TLS minus cleartext.
#include <chrono>
#include <cstdio>

#include "bench/cluster_process.hpp"
#include "bench/throughput_experiment.hpp"
#include "cli/command_registry.hpp"
#include "kernels/error.hpp"

namespace troupe::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchTlsOptions {
  std::string model;
  int requests = 200;       // submit latency samples per round
  int decode_tokens = 256;  // tokens per decode request
  int decodes = 3;          // decode requests per round
  int rounds = 3;
};

struct Samples {
  std::vector<double> submit_us, step_us;
};

void run_round(Client& client, const BenchTlsOptions& o, Samples& out) {
  SubmitRequest one;
  one.prompt_ids = {1, 5, 9, 13};
  one.max_tokens = 1;
  for (int i = 0; i < o.requests; ++i) {
    const auto t0 = Clock::now();
    const FinishedEvent e = client.generate(one);
    if (e.reason == FinishReason::Error) fail("submit: {}", e.error);
    out.submit_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  SubmitRequest decode = one;
  decode.max_tokens = o.decode_tokens;
  decode.ignore_eos = true;
  for (int i = 0; i < o.decodes; ++i) {
    Clock::time_point first, last;
    int tokens = 0;
    const FinishedEvent e = client.generate(decode, [&](const TokenEvent&) {
      last = Clock::now();
      if (tokens++ == 0) first = last;
    });
    if (e.reason == FinishReason::Error) fail("decode: {}", e.error);
    if (tokens > 1)
      out.step_us.push_back(std::chrono::duration<double, std::micro>(last - first).count() / (tokens - 1));
  }
}

int run_bench_tls(const BenchTlsOptions& o) {
  ClusterSpec spec;
  spec.model = o.model;
  spec.troupe_binary = "/proc/self/exe";
  spec.pp = 2;
  spec.ranks_per_node = {1, 1};
  std::fprintf(stderr, "bench tls: starting a cleartext and a TLS cluster (pp 2, two node processes each)\n");
  ClusterProcess plain_cluster(spec);
  spec.tls = true;
  ClusterProcess tls_cluster(spec);
  auto plain = plain_cluster.connect(std::chrono::minutes(2));
  auto tls = tls_cluster.connect(std::chrono::minutes(2));
  Samples plain_samples, tls_samples;
  for (int r = 0; r < o.rounds; ++r) {
    std::fprintf(stderr, "bench tls: round %d/%d\n", r + 1, o.rounds);
    run_round(*plain, o, plain_samples);
    run_round(*tls, o, tls_samples);
  }
  std::printf("%-10s %16s %16s\n", "", "submit us (p50)", "decode step us (p50)");
  const double ps = percentiles(plain_samples.submit_us).p50, ts = percentiles(tls_samples.submit_us).p50;
  const double pd = percentiles(plain_samples.step_us).p50, td = percentiles(tls_samples.step_us).p50;
  std::printf("%-10s %16.1f %16.1f\n", "cleartext", ps, pd);
  std::printf("%-10s %16.1f %16.1f\n", "TLS", ts, td);
  std::printf("%-10s %+16.1f %+16.1f\n", "TLS - clr", ts - ps, td - pd);
  std::printf("%-10s %16.3f %16.3f\n", "TLS / clr", ts / ps, td / pd);
  std::printf("(%d rounds x %d submits and %d decodes of %d tokens, alternating; model %s)\n", o.rounds, o.requests,
              o.decodes, o.decode_tokens, o.model.c_str());
  return 0;
}

TROUPE_BENCH(
    "tls", "mutual TLS vs cleartext on the control plane: cost per request submit and per decode step",
    [](CLI::App& cmd) -> std::function<int()> {
      auto o = std::make_shared<BenchTlsOptions>();
      cmd.add_option("--model", o->model, "model folder")->required();
      cmd.add_option("--requests", o->requests, "max_tokens=1 requests per round and mode")->capture_default_str();
      cmd.add_option("--decode-tokens", o->decode_tokens, "tokens per decode request")->capture_default_str();
      cmd.add_option("--decodes", o->decodes, "decode requests per round and mode")->capture_default_str();
      cmd.add_option("--rounds", o->rounds, "alternating cleartext/TLS rounds")->capture_default_str();
      return [o] { return run_bench_tls(*o); };
    });

}  // namespace
}  // namespace troupe::cli
