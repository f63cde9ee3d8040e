#include "kernels/linear.hpp"

#include <immintrin.h>

#include "kernels/cpu_features.hpp"
#include "kernels/error.hpp"
#include "kernels/thread_pool.hpp"

namespace troupe {

namespace {

struct GemmArgs {
  const float* x;
  int64_t ldx;
  const void* w;
  int64_t ldw;
  bool w_bf16;
  const float* bias;
  float* out;
  int64_t ldo;
  int64_t M, N, K;
};

// ---- scalar (reference and fallback) ----
void gemm_scalar(const GemmArgs& a, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t m = 0; m < a.M; ++m) {
      const float* xr = a.x + m * a.ldx;
      float acc = 0;
      if (a.w_bf16) {
        const uint16_t* wr = static_cast<const uint16_t*>(a.w) + n * a.ldw;
        for (int64_t k = 0; k < a.K; ++k) acc += xr[k] * bf16_to_f32(wr[k]);
      } else {
        const float* wr = static_cast<const float*>(a.w) + n * a.ldw;
        for (int64_t k = 0; k < a.K; ++k) acc += xr[k] * wr[k];
      }
      a.out[m * a.ldo + n] = acc + (a.bias ? a.bias[n] : 0.0f);
    }
  }
}

// ---- AVX-512: 16 lanes, masked tail ----
#define TROUPE_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma"), always_inline)) inline

TROUPE_AVX512 __m512 load_w512(const void* w, bool bf16, int64_t offset, __mmask16 mask) {
  if (bf16) {
    __m256i h = _mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(w) + offset);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(w) + offset);
}

// An MR x NR tile of outputs: rows m0.., weight rows n0..; one accumulator per output.
template <int MR, int NR>
__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) void tile512(const GemmArgs& a, int64_t m0, int64_t n0) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < a.K; k += 16) {
    __mmask16 mask = a.K - k >= 16 ? __mmask16(0xffff) : __mmask16((1u << (a.K - k)) - 1);
    __m512 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = load_w512(a.w, a.w_bf16, (n0 + j) * a.ldw + k, mask);
    for (int i = 0; i < MR; ++i) {
      __m512 xv = _mm512_maskz_loadu_ps(mask, a.x + (m0 + i) * a.ldx + k);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j)
      a.out[(m0 + i) * a.ldo + n0 + j] = _mm512_reduce_add_ps(acc[i][j]) + (a.bias ? a.bias[n0 + j] : 0.0f);
}

template <int MR>
__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) void rows512(const GemmArgs& a, int64_t m0, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) tile512<MR, 4>(a, m0, n);
  for (; n < n1; ++n) tile512<MR, 1>(a, m0, n);
}

__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) void gemm_avx512(const GemmArgs& a, int64_t n0, int64_t n1) {
  if (a.M == 1) {  // decode: stream 8 weight rows at a time
    int64_t n = n0;
    for (; n + 8 <= n1; n += 8) tile512<1, 8>(a, 0, n);
    for (; n < n1; ++n) tile512<1, 1>(a, 0, n);
    return;
  }
  // Block the weight rows so a block stays in cache while every row of x passes over it.
  constexpr int64_t kBlockN = 16;
  for (int64_t nb = n0; nb < n1; nb += kBlockN) {
    int64_t ne = std::min(n1, nb + kBlockN);
    int64_t m = 0;
    for (; m + 4 <= a.M; m += 4) rows512<4>(a, m, nb, ne);
    for (; m < a.M; ++m) rows512<1>(a, m, nb, ne);
  }
}

// ---- AVX2: 8 lanes, scalar tail appended in order ----
#define TROUPE_AVX2 __attribute__((target("avx2,fma"), always_inline)) inline

TROUPE_AVX2 __m256 load_w256(const void* w, bool bf16, int64_t offset) {
  if (bf16) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + offset));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  return _mm256_loadu_ps(static_cast<const float*>(w) + offset);
}

TROUPE_AVX2 float hsum256(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  __m128 s = _mm_add_ps(lo, hi);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

template <int MR, int NR>
__attribute__((target("avx2,fma"))) void tile256(const GemmArgs& a, int64_t m0, int64_t n0) {
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t k8 = a.K / 8 * 8;
  for (int64_t k = 0; k < k8; k += 8) {
    __m256 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = load_w256(a.w, a.w_bf16, (n0 + j) * a.ldw + k);
    for (int i = 0; i < MR; ++i) {
      __m256 xv = _mm256_loadu_ps(a.x + (m0 + i) * a.ldx + k);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    const float* xr = a.x + (m0 + i) * a.ldx;
    for (int j = 0; j < NR; ++j) {
      float s = hsum256(acc[i][j]);
      int64_t row = (n0 + j) * a.ldw;
      for (int64_t k = k8; k < a.K; ++k)
        s += xr[k] * (a.w_bf16 ? bf16_to_f32(static_cast<const uint16_t*>(a.w)[row + k]) : static_cast<const float*>(a.w)[row + k]);
      a.out[(m0 + i) * a.ldo + n0 + j] = s + (a.bias ? a.bias[n0 + j] : 0.0f);
    }
  }
}

__attribute__((target("avx2,fma"))) void gemm_avx2(const GemmArgs& a, int64_t n0, int64_t n1) {
  constexpr int64_t kBlockN = 16;
  for (int64_t nb = n0; nb < n1; nb += kBlockN) {
    int64_t ne = std::min(n1, nb + kBlockN);
    int64_t m = 0;
    for (; m + 4 <= a.M; m += 4) {
      int64_t n = nb;
      for (; n + 2 <= ne; n += 2) tile256<4, 2>(a, m, n);
      for (; n < ne; ++n) tile256<4, 1>(a, m, n);
    }
    for (; m < a.M; ++m) {
      int64_t n = nb;
      for (; n + 4 <= ne; n += 4) tile256<1, 4>(a, m, n);
      for (; n < ne; ++n) tile256<1, 1>(a, m, n);
    }
  }
}

}  // namespace

void linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out) {
  if (x.dtype() != DType::F32 || x.dim() != 2 || x.strides()[1] != 1)
    fail("linear: input must be f32 [M, K] with contiguous rows, got {}", x.describe());
  if ((w.dtype() != DType::F32 && w.dtype() != DType::BF16) || w.dim() != 2 || w.strides()[1] != 1)
    fail("linear: weight must be f32 or bf16 [N, K] with contiguous rows, got {}", w.describe());
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  if (w.size(1) != K) fail("linear: input {} does not match weight {} (in_features {} vs {})", x.describe(), w.describe(), K, w.size(1));
  if (out.dtype() != DType::F32 || out.dim() != 2 || out.size(0) != M || out.size(1) != N || out.strides()[1] != 1)
    fail("linear: output must be f32 [{}, {}], got {}", M, N, out.describe());
  if (bias.defined() && (bias.dtype() != DType::F32 || bias.numel() != N || !bias.is_contiguous()))
    fail("linear: bias must be f32 [{}], got {}", N, bias.describe());
  GemmArgs a{x.data<float>(), x.strides()[0], w.raw(), w.strides()[0], w.dtype() == DType::BF16,
             bias.defined() ? bias.data<float>() : nullptr, out.data<float>(), out.strides()[0], M, N, K};
  if (M == 0 || N == 0) return;
  const auto& cpu = CpuFeatures::get();
  auto* kernel = cpu.avx512 ? gemm_avx512 : cpu.avx2_fma ? gemm_avx2 : gemm_scalar;
  // Split the weight rows over threads in multiples of 16 so tiles never straddle threads.
  ThreadPool::current().parallel_for(N, 16, [&](int64_t n0, int64_t n1) { kernel(a, n0, n1); });
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  Tensor out = Tensor::empty({x.size(0), w.size(0)}, DType::F32);
  linear(x, w, bias, out);
  return out;
}

}  // namespace troupe
