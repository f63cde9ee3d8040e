#include "kernels/linear.hpp"

#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu_features.hpp"
#include "kernels/error.hpp"
#include "kernels/quant_blocks.hpp"
#include "kernels/thread_pool.hpp"

namespace troupe {

namespace {

constexpr int64_t P = PackedWeight::kPanel;

float weight_value(const Tensor& w, int64_t n, int64_t k) {
  const char* row = static_cast<const char*>(w.raw()) + (n * w.strides()[0] + k) * int64_t(dtype_size(w.dtype()));
  switch (w.dtype()) {
    case DType::F32:
      return *reinterpret_cast<const float*>(row);
    case DType::BF16:
      return bf16_to_f32(*reinterpret_cast<const uint16_t*>(row));
    case DType::F16:
      return f16_to_f32(*reinterpret_cast<const uint16_t*>(row));
    default:
      fail("linear: weight dtype {} is not a float type", dtype_name(w.dtype()));
  }
}

uint16_t weight_bits_bf16(const Tensor& w, int64_t n, int64_t k) {
  return static_cast<const uint16_t*>(w.raw())[n * w.strides()[0] + k];
}

struct Args {
  const float* x;
  int64_t ldx;
  const void* w;  // packed panels
  bool bf16;
  WeightFormat format;
  const float* bias;
  float* out;
  int64_t ldo;
  int64_t M, N, K;
};

// Bytes of one packed panel.
int64_t panel_bytes(const Args& a) { return a.K * P * (a.bf16 ? 2 : 4); }

void store_tile(const Args& a, int64_t m, int64_t n0, const float* acc32) {
  for (int64_t j = 0; j < P && n0 + j < a.N; ++j)
    a.out[m * a.ldo + n0 + j] = acc32[j] + (a.bias ? a.bias[n0 + j] : 0.0f);
}

// ---- scalar fallback (fmaf keeps the same rounding as the vector paths) ----
void panels_scalar(const Args& a, int64_t p0, int64_t p1) {
  float acc[P];
  for (int64_t p = p0; p < p1; ++p) {
    const char* panel = static_cast<const char*>(a.w) + p * panel_bytes(a);
    for (int64_t m = 0; m < a.M; ++m) {
      std::fill(acc, acc + P, 0.0f);
      const float* xr = a.x + m * a.ldx;
      for (int64_t k = 0; k < a.K; ++k) {
        for (int64_t j = 0; j < P; ++j) {
          float w;
          if (a.bf16) {
            uint32_t lane = reinterpret_cast<const uint32_t*>(panel)[k * 16 + j % 16];
            w = bf16_to_f32(uint16_t(j < 16 ? lane & 0xffff : lane >> 16));
          } else {
            w = reinterpret_cast<const float*>(panel)[k * P + j];
          }
          acc[j] = std::fma(xr[k], w, acc[j]);
        }
      }
      store_tile(a, m, p * P, acc);
    }
  }
}

// ---- AVX-512 ----
#define TROUPE_AVX512_FN __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

// Loads row k of a panel as two f32 vectors (rows 0-15 and 16-31 of the panel).
TROUPE_AVX512_FN inline void load_panel_row(const Args& a, const char* panel, int64_t k, __m512& lo, __m512& hi) {
  if (a.bf16) {
    __m512i pairs = _mm512_loadu_si512(panel + k * 64);
    lo = _mm512_castsi512_ps(_mm512_slli_epi32(pairs, 16));
    hi = _mm512_castsi512_ps(_mm512_and_si512(pairs, _mm512_set1_epi32(int(0xffff0000u))));
  } else {
    lo = _mm512_loadu_ps(reinterpret_cast<const float*>(panel) + k * P);
    hi = _mm512_loadu_ps(reinterpret_cast<const float*>(panel) + k * P + 16);
  }
}

// MR rows of x against one panel (32 outputs): 2 * MR accumulators.
template <int MR>
TROUPE_AVX512_FN void tile_avx512(const Args& a, int64_t m0, int64_t p) {
  const char* panel = static_cast<const char*>(a.w) + p * panel_bytes(a);
  __m512 lo_acc[MR], hi_acc[MR];
  for (int i = 0; i < MR; ++i) lo_acc[i] = hi_acc[i] = _mm512_setzero_ps();
  const float* xr[MR];
  for (int i = 0; i < MR; ++i) xr[i] = a.x + (m0 + i) * a.ldx;
  for (int64_t k = 0; k < a.K; ++k) {
    __m512 lo, hi;
    load_panel_row(a, panel, k, lo, hi);
    for (int i = 0; i < MR; ++i) {
      __m512 xv = _mm512_set1_ps(xr[i][k]);
      lo_acc[i] = _mm512_fmadd_ps(xv, lo, lo_acc[i]);
      hi_acc[i] = _mm512_fmadd_ps(xv, hi, hi_acc[i]);
    }
  }
  alignas(64) float acc[P];
  for (int i = 0; i < MR; ++i) {
    _mm512_store_ps(acc, lo_acc[i]);
    _mm512_store_ps(acc + 16, hi_acc[i]);
    store_tile(a, m0 + i, p * P, acc);
  }
}

// One row of x against two panels at once: four independent accumulator chains keep the FMA
// pipes busy while the panels stream from memory.
TROUPE_AVX512_FN void gemv_two_panels_avx512(const Args& a, int64_t p) {
  const char* pa = static_cast<const char*>(a.w) + p * panel_bytes(a);
  const char* pb = pa + panel_bytes(a);
  __m512 a_lo = _mm512_setzero_ps(), a_hi = a_lo, b_lo = a_lo, b_hi = a_lo;
  for (int64_t k = 0; k < a.K; ++k) {
    __m512 xv = _mm512_set1_ps(a.x[k]);
    __m512 lo, hi;
    load_panel_row(a, pa, k, lo, hi);
    a_lo = _mm512_fmadd_ps(xv, lo, a_lo);
    a_hi = _mm512_fmadd_ps(xv, hi, a_hi);
    load_panel_row(a, pb, k, lo, hi);
    b_lo = _mm512_fmadd_ps(xv, lo, b_lo);
    b_hi = _mm512_fmadd_ps(xv, hi, b_hi);
  }
  alignas(64) float acc[P];
  _mm512_store_ps(acc, a_lo);
  _mm512_store_ps(acc + 16, a_hi);
  store_tile(a, 0, p * P, acc);
  _mm512_store_ps(acc, b_lo);
  _mm512_store_ps(acc + 16, b_hi);
  store_tile(a, 0, (p + 1) * P, acc);
}

TROUPE_AVX512_FN void panels_avx512(const Args& a, int64_t p0, int64_t p1) {
  if (a.M == 1) {
    int64_t p = p0;
    for (; p + 2 <= p1; p += 2) gemv_two_panels_avx512(a, p);
    for (; p < p1; ++p) tile_avx512<1>(a, 0, p);
    return;
  }
  // The last M % 8 rows: tail[rows left].
  static constexpr void (*tail[])(const Args&, int64_t, int64_t) = {nullptr,        tile_avx512<1>, tile_avx512<2>,
                                                                    tile_avx512<3>, tile_avx512<4>, tile_avx512<5>,
                                                                    tile_avx512<6>, tile_avx512<7>};
  for (int64_t p = p0; p < p1; ++p) {
    int64_t m = 0;
    for (; m + 8 <= a.M; m += 8) tile_avx512<8>(a, m, p);
    if (m < a.M) tail[a.M - m](a, m, p);
  }
}

// ---- AVX2: the same panels, four 8-lane quarters ----
#define TROUPE_AVX2_FN __attribute__((target("avx2,fma")))

TROUPE_AVX2_FN inline void load_panel_row_avx2(const Args& a, const char* panel, int64_t k, __m256 v[4]) {
  if (a.bf16) {
    const __m256i mask = _mm256_set1_epi32(int(0xffff0000u));
    __m256i p0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + k * 64));       // lanes 0-7
    __m256i p1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + k * 64 + 32));  // lanes 8-15
    v[0] = _mm256_castsi256_ps(_mm256_slli_epi32(p0, 16));                                   // rows 0-7
    v[1] = _mm256_castsi256_ps(_mm256_slli_epi32(p1, 16));                                   // rows 8-15
    v[2] = _mm256_castsi256_ps(_mm256_and_si256(p0, mask));                                  // rows 16-23
    v[3] = _mm256_castsi256_ps(_mm256_and_si256(p1, mask));                                  // rows 24-31
  } else {
    const float* row = reinterpret_cast<const float*>(panel) + k * P;
    for (int q = 0; q < 4; ++q) v[q] = _mm256_loadu_ps(row + 8 * q);
  }
}

template <int MR>
TROUPE_AVX2_FN void tile_avx2(const Args& a, int64_t m0, int64_t p) {
  const char* panel = static_cast<const char*>(a.w) + p * panel_bytes(a);
  __m256 acc[MR][4];
  for (int i = 0; i < MR; ++i)
    for (int q = 0; q < 4; ++q) acc[i][q] = _mm256_setzero_ps();
  for (int64_t k = 0; k < a.K; ++k) {
    __m256 w[4];
    load_panel_row_avx2(a, panel, k, w);
    for (int i = 0; i < MR; ++i) {
      __m256 xv = _mm256_set1_ps(a.x[(m0 + i) * a.ldx + k]);
      for (int q = 0; q < 4; ++q) acc[i][q] = _mm256_fmadd_ps(xv, w[q], acc[i][q]);
    }
  }
  alignas(32) float out[P];
  for (int i = 0; i < MR; ++i) {
    for (int q = 0; q < 4; ++q) _mm256_store_ps(out + 8 * q, acc[i][q]);
    store_tile(a, m0 + i, p * P, out);
  }
}

TROUPE_AVX2_FN void panels_avx2(const Args& a, int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    int64_t m = 0;
    for (; m + 3 <= a.M; m += 3) tile_avx2<3>(a, m, p);
    if (a.M - m == 2) tile_avx2<2>(a, m, p);
    if (a.M - m == 1) tile_avx2<1>(a, m, p);
  }
}

// ---- quantized panels (Q8_0 / Q4_0) ----
constexpr int64_t kBlock = PackedWeight::kQuantBlock;

// Bytes of one panel's block of 32 k values: 32 f16 scales, then the values.
int64_t quant_block_bytes(WeightFormat f) { return 2 * P + (f == WeightFormat::Q8_0 ? kBlock * P : kBlock * P / 2); }
int64_t quant_panel_bytes(const Args& a) { return a.K / kBlock * quant_block_bytes(a.format); }

// Row j of the panel's block, value kk, as ggml dequantizes it: float(q) * d.
inline float quant_value(WeightFormat f, const char* block, int64_t j, int64_t kk) {
  uint16_t d_bits;
  std::memcpy(&d_bits, block + 2 * j, 2);
  const float d = f16_to_f32(d_bits);
  const char* values = block + 2 * P;
  if (f == WeightFormat::Q8_0) return float(int8_t(values[kk * P + j])) * d;
  const auto byte = static_cast<unsigned char>(values[kk * (P / 2) + j % 16]);
  return float((j < 16 ? byte & 0x0F : byte >> 4) - 8) * d;
}

void quant_panels_scalar(const Args& a, int64_t p0, int64_t p1) {
  float acc[P];
  const int64_t bb = quant_block_bytes(a.format);
  for (int64_t p = p0; p < p1; ++p) {
    const char* panel = static_cast<const char*>(a.w) + p * quant_panel_bytes(a);
    for (int64_t m = 0; m < a.M; ++m) {
      std::fill(acc, acc + P, 0.0f);
      const float* xr = a.x + m * a.ldx;
      for (int64_t k = 0; k < a.K; ++k)
        for (int64_t j = 0; j < P; ++j)
          acc[j] = std::fma(xr[k], quant_value(a.format, panel + k / kBlock * bb, j, k % kBlock), acc[j]);
      store_tile(a, m, p * P, acc);
    }
  }
}

// Every CPU with AVX2 and FMA (Haswell, Zen and later) has F16C: the scales convert with vcvtph2ps.
#define TROUPE_AVX2_F16C_FN __attribute__((target("avx2,fma,f16c")))

// One k row of a quantized block as four 8-row f32 vectors: q * d, exactly as ggml dequantizes.
template <bool Q4>
TROUPE_AVX2_F16C_FN inline void quant_row_avx2(const char* values, int64_t kk, const __m256 d[4], __m256 w[4]) {
  if constexpr (!Q4) {
    const char* row = values + kk * P;
    for (int q = 0; q < 4; ++q) {
      const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + 8 * q));
      w[q] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes)), d[q]);
    }
  } else {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(values + kk * (P / 2)));
    const __m128i mask = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    const __m128i lo = _mm_sub_epi8(_mm_and_si128(bytes, mask), eight);                     // rows 0-15
    const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(bytes, 4), mask), eight);  // rows 16-31
    w[0] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d[0]);
    w[1] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), d[1]);
    w[2] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d[2]);
    w[3] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), d[3]);
  }
}

template <int MR, bool Q4>
TROUPE_AVX2_F16C_FN void quant_tile_avx2(const Args& a, int64_t m0, int64_t p) {
  const int64_t bb = quant_block_bytes(a.format);
  const char* panel = static_cast<const char*>(a.w) + p * quant_panel_bytes(a);
  __m256 acc[MR][4];
  for (int i = 0; i < MR; ++i)
    for (int q = 0; q < 4; ++q) acc[i][q] = _mm256_setzero_ps();
  for (int64_t b = 0; b < a.K / kBlock; ++b) {
    const char* block = panel + b * bb;
    __m256 d[4];
    for (int q = 0; q < 4; ++q)
      d[q] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * q)));
    for (int64_t kk = 0; kk < kBlock; ++kk) {
      __m256 w[4];
      quant_row_avx2<Q4>(block + 2 * P, kk, d, w);
      const int64_t k = b * kBlock + kk;
      for (int i = 0; i < MR; ++i) {
        const __m256 xv = _mm256_set1_ps(a.x[(m0 + i) * a.ldx + k]);
        for (int q = 0; q < 4; ++q) acc[i][q] = _mm256_fmadd_ps(xv, w[q], acc[i][q]);
      }
    }
  }
  alignas(32) float out[P];
  for (int i = 0; i < MR; ++i) {
    for (int q = 0; q < 4; ++q) _mm256_store_ps(out + 8 * q, acc[i][q]);
    store_tile(a, m0 + i, p * P, out);
  }
}

template <bool Q4>
TROUPE_AVX2_F16C_FN void quant_panels_avx2(const Args& a, int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    int64_t m = 0;
    for (; m + 3 <= a.M; m += 3) quant_tile_avx2<3, Q4>(a, m, p);
    if (a.M - m == 2) quant_tile_avx2<2, Q4>(a, m, p);
    if (a.M - m == 1) quant_tile_avx2<1, Q4>(a, m, p);
  }
}

// Packs rows [N, K] (K a multiple of 32) as quantized panels.
Tensor pack_quantized(const Tensor& w, int64_t n, int64_t k, WeightFormat f) {
  const GgmlType type = f == WeightFormat::Q8_0 ? GgmlType::Q8_0 : GgmlType::Q4_0;
  const int64_t panels = (n + P - 1) / P, blocks = k / kBlock, bb = quant_block_bytes(f);
  Tensor data = Tensor::zeros({panels * blocks * bb}, DType::U8);
  char* dst = static_cast<char*>(data.raw());
  const int64_t row_bytes = ggml_row_bytes(type, k), ggml_block = ggml_block_bytes(type);
  parallel_for(panels, 1, [&](int64_t p0, int64_t p1) {
    std::vector<float> row(static_cast<size_t>(k));
    std::vector<char> quantized(static_cast<size_t>(row_bytes));
    for (int64_t p = p0; p < p1; ++p)
      for (int64_t j = 0; j < P && p * P + j < n; ++j) {
        for (int64_t kk = 0; kk < k; ++kk) row[size_t(kk)] = weight_value(w, p * P + j, kk);
        quantize_row(type, row.data(), quantized.data(), k);
        for (int64_t b = 0; b < blocks; ++b) {
          const char* src = quantized.data() + b * ggml_block;  // f16 d, then the values
          char* block = dst + (p * blocks + b) * bb;
          std::memcpy(block + 2 * j, src, 2);
          char* values = block + 2 * P;
          if (f == WeightFormat::Q8_0) {
            for (int64_t kk = 0; kk < kBlock; ++kk) values[kk * P + j] = src[2 + kk];
          } else {
            for (int64_t kk = 0; kk < kBlock; ++kk) {
              const auto byte = static_cast<unsigned char>(src[2 + kk % 16]);
              const unsigned char nibble = kk < 16 ? byte & 0x0F : byte >> 4;  // ggml: value kk of the block
              auto& out = reinterpret_cast<unsigned char&>(values[kk * (P / 2) + j % 16]);
              out |= j < 16 ? nibble : uint8_t(nibble << 4);
            }
          }
        }
      }
  });
  return data;
}

}  // namespace

const char* weight_format_name(WeightFormat format) {
  switch (format) {
    case WeightFormat::Float:
      return "float";
    case WeightFormat::Q8_0:
      return "q8_0";
    case WeightFormat::Q4_0:
      return "q4_0";
  }
  return "?";
}

WeightFormat parse_weight_format(std::string_view name) {
  if (name.empty() || name == "none" || name == "float") return WeightFormat::Float;
  const auto type = parse_ggml_type(name);
  if (type == GgmlType::Q8_0) return WeightFormat::Q8_0;
  if (type == GgmlType::Q4_0) return WeightFormat::Q4_0;
  fail("quantization '{}' is not known (q8_0, q4_0 or none)", name);
}

PackedWeight::PackedWeight(const Tensor& w, WeightFormat format) {
  if (w.dim() != 2 || w.strides()[1] != 1)
    fail("linear: weight must be [N, K] with contiguous rows, got {}", w.describe());
  n_ = w.size(0);
  k_ = w.size(1);
  const int64_t panels = (n_ + P - 1) / P;
  if (format != WeightFormat::Float && k_ % kBlock == 0 && k_ > 0) {
    format_ = format;
    data_ = pack_quantized(w, n_, k_, format);
  } else if (w.dtype() == DType::BF16) {
    data_ = Tensor::zeros({panels, k_, P / 2}, DType::I32);
    uint32_t* dst = data_.data<uint32_t>();
    parallel_for(panels, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p)
        for (int64_t j = 0; j < P && p * P + j < n_; ++j) {
          const int64_t n = p * P + j;
          for (int64_t k = 0; k < k_; ++k) {
            uint32_t& lane = dst[(p * k_ + k) * 16 + j % 16];
            uint32_t bits = weight_bits_bf16(w, n, k);
            lane |= j < 16 ? bits : bits << 16;
          }
        }
    });
  } else {
    data_ = Tensor::zeros({panels, k_, P}, DType::F32);
    float* dst = data_.data<float>();
    parallel_for(panels, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p)
        for (int64_t j = 0; j < P && p * P + j < n_; ++j)
          for (int64_t k = 0; k < k_; ++k) dst[(p * k_ + k) * P + j] = weight_value(w, p * P + j, k);
    });
  }
}

void linear(const Tensor& x, const PackedWeight& w, const Tensor& bias, Tensor& out) {
  if (!w.defined()) fail("linear: weight is not loaded");
  if (x.dtype() != DType::F32 || x.dim() != 2 || x.strides()[1] != 1)
    fail("linear: input must be f32 [M, K] with contiguous rows, got {}", x.describe());
  const int64_t M = x.size(0), K = x.size(1), N = w.out_features();
  if (w.in_features() != K)
    fail("linear: input {} has {} features but the weight takes {}", x.describe(), K, w.in_features());
  if (out.dtype() != DType::F32 || out.dim() != 2 || out.size(0) != M || out.size(1) != N || out.strides()[1] != 1)
    fail("linear: output must be f32 [{}, {}], got {}", M, N, out.describe());
  if (bias.defined() && (bias.dtype() != DType::F32 || bias.numel() != N || !bias.is_contiguous()))
    fail("linear: bias must be f32 [{}], got {}", N, bias.describe());
  if (M == 0 || N == 0) return;
  Args a{x.data<float>(),
         x.strides()[0],
         w.data().raw(),
         w.format() == WeightFormat::Float && w.dtype() != DType::F32,
         w.format(),
         bias.defined() ? bias.data<float>() : nullptr,
         out.data<float>(),
         out.strides()[0],
         M,
         N,
         K};
  const auto& cpu = CpuFeatures::get();
  auto* kernel = cpu.avx512 ? panels_avx512 : cpu.avx2_fma ? panels_avx2 : panels_scalar;
  if (w.format() == WeightFormat::Q8_0) kernel = cpu.avx2_fma ? quant_panels_avx2<false> : quant_panels_scalar;
  if (w.format() == WeightFormat::Q4_0) kernel = cpu.avx2_fma ? quant_panels_avx2<true> : quant_panels_scalar;
  const int64_t panels = (N + P - 1) / P;
  ThreadPool::current().parallel_for(panels, 2, [&](int64_t p0, int64_t p1) { kernel(a, p0, p1); });
}

Tensor linear(const Tensor& x, const PackedWeight& w, const Tensor& bias) {
  Tensor out = Tensor::empty({x.size(0), w.out_features()}, DType::F32);
  linear(x, w, bias, out);
  return out;
}

}  // namespace troupe
