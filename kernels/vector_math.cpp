#include "kernels/vector_math.hpp"

#include <immintrin.h>

#include <cmath>

#include "kernels/cpu_features.hpp"

namespace troupe::vec {

namespace {

float dot_scalar(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}
void axpy_scalar(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) float dot_avx512(const float* a, const float* b, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc);
  }
  return _mm512_reduce_add_ps(acc);
}
__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) void axpy_avx512(float alpha, const float* x, float* y,
                                                                          int64_t n) {
  __m512 a = _mm512_set1_ps(alpha);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(y + i, m,
                          _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

__attribute__((target("avx2,fma"))) float dot_avx2(const float* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t n8 = n / 8 * 8;
  for (int64_t i = 0; i < n8; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  float s = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
  for (int64_t i = n8; i < n; ++i) s += a[i] * b[i];
  return s;
}
__attribute__((target("avx2,fma"))) void axpy_avx2(float alpha, const float* x, float* y, int64_t n) {
  __m256 a = _mm256_set1_ps(alpha);
  int64_t n8 = n / 8 * 8;
  for (int64_t i = 0; i < n8; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (int64_t i = n8; i < n; ++i) y[i] += alpha * x[i];
}

struct Dispatch {
  float (*dot)(const float*, const float*, int64_t);
  void (*axpy)(float, const float*, float*, int64_t);
};

const Dispatch& dispatch() {
  static const Dispatch d = [] {
    const auto& cpu = CpuFeatures::get();
    if (cpu.avx512) return Dispatch{dot_avx512, axpy_avx512};
    if (cpu.avx2_fma) return Dispatch{dot_avx2, axpy_avx2};
    return Dispatch{dot_scalar, axpy_scalar};
  }();
  return d;
}

}  // namespace

float dot(const float* a, const float* b, int64_t n) { return dispatch().dot(a, b, n); }
void axpy(float alpha, const float* x, float* y, int64_t n) { dispatch().axpy(alpha, x, y, n); }

}  // namespace troupe::vec
