// `troupe bench gemm`: troupe's packed-panel linear kernel against oneDNN's sgemm (the
// "measure both before choosing" check), f32 weights, the decode and prefill shapes of a
// Llama-3.2-1B projection, plus troupe's bf16-weight kernel for reference.
#include <chrono>
#include <cstdio>
#include <random>

#include "cli/command_registry.hpp"
#include "kernels/linear.hpp"
#include "kernels/thread_pool.hpp"
#ifdef TROUPE_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

namespace troupe::cli {
namespace {

template <typename F>
double best_seconds(F&& f, int reps) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

int run_bench_gemm(int64_t n, int64_t k) {
  std::mt19937 rng{1};
  std::normal_distribution<float> dist;
  std::vector<float> wv(size_t(n * k));
  for (auto& v : wv) v = dist(rng);
  Tensor w = Tensor::from_floats(wv, {n, k});
  PackedWeight packed_f32(w), packed_bf16(w.to(DType::BF16));
  std::printf("out[M, %lld] = x[M, %lld] * W^T, %d threads; GFLOP/s (best of 5)\n", (long long)n, (long long)k,
              ThreadPool::current().size());
  std::printf("%6s | %14s | %14s | %16s\n", "M", "troupe f32", "oneDNN sgemm", "troupe bf16 W");
  for (int64_t m : {1, 16, 64, 256}) {
    std::vector<float> xv(size_t(m * k));
    for (auto& v : xv) v = dist(rng);
    Tensor x = Tensor::from_floats(xv, {m, k});
    Tensor out = Tensor::empty({m, n}, DType::F32);
    const double flop = 2.0 * double(m) * double(n) * double(k);
    const int reps = 5;
    double ours = best_seconds([&] { linear(x, packed_f32, Tensor(), out); }, reps);
    double ours16 = best_seconds([&] { linear(x, packed_bf16, Tensor(), out); }, reps);
    double theirs = 0;
#ifdef TROUPE_HAVE_DNNL
    theirs = best_seconds(
        [&] {
          dnnl_sgemm('N', 'T', m, n, k, 1.0f, x.data<float>(), k, w.data<float>(), k, 0.0f, out.data<float>(), n);
        },
        reps);
#endif
    std::printf("%6lld | %14.1f | %14.1f | %16.1f\n", (long long)m, flop / ours / 1e9,
                theirs > 0 ? flop / theirs / 1e9 : 0.0, flop / ours16 / 1e9);
  }
#ifndef TROUPE_HAVE_DNNL
  std::printf("(built without oneDNN: its column is empty)\n");
#endif
  return 0;
}

TROUPE_BENCH("gemm", "troupe's linear kernel vs oneDNN sgemm on Llama-sized projections",
             [](CLI::App& cmd) -> std::function<int()> {
               auto n = std::make_shared<int64_t>(2048), k = std::make_shared<int64_t>(2048);
               cmd.add_option("--n", *n, "output features")->capture_default_str();
               cmd.add_option("--k", *k, "input features")->capture_default_str();
               return [n, k] { return run_bench_gemm(*n, *k); };
             });

}  // namespace
}  // namespace troupe::cli
