#include "bench/memory_bandwidth.hpp"

#include <immintrin.h>

#include <chrono>
#include <cstring>
#include <numeric>

#include "kernels/cpu_features.hpp"
#include "kernels/tensor.hpp"
#include "kernels/thread_pool.hpp"

namespace troupe {

namespace {
__attribute__((target("avx512f"))) float sum_avx512(const float* p, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}
float sum_plain(const float* p, int64_t n) { return std::accumulate(p, p + n, 0.0f); }
}  // namespace

double measure_read_bandwidth(int64_t buffer_bytes, int repetitions) {
  const int64_t n = buffer_bytes / 4 / 64 * 64;
  Tensor buffer = Tensor::empty({n}, DType::F32);
  std::memset(buffer.raw(), 1, size_t(n) * 4);  // touch every page
  const float* p = buffer.data<float>();
  auto sum = CpuFeatures::get().avx512 ? sum_avx512 : sum_plain;
  double best = 0;
  volatile float sink = 0;
  for (int r = 0; r < repetitions; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    parallel_for(n / 64, 1024, [&](int64_t b, int64_t e) { sink = sink + sum(p + b * 64, (e - b) * 64); });
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, double(n) * 4 / s);
  }
  return best;
}

}  // namespace troupe
