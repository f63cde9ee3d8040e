#include "kernels/quant_blocks.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <string>

#include "kernels/dtype.hpp"
#include "kernels/error.hpp"

namespace troupe {

namespace {

constexpr int64_t kQk = 32;    // values per Q8_0 / Q4_0 block
constexpr int64_t kQkK = 256;  // values per K-quant super-block

struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQk];
};
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQk / 2];
};
struct BlockQ4_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qs[kQkK / 2];
};
struct BlockQ6_K {
  uint8_t ql[kQkK / 2];
  uint8_t qh[kQkK / 4];
  int8_t scales[kQkK / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ6_K) == 210);

// Q4_K's j-th 6-bit scale and min, packed in 12 bytes.
void scale_min_k4(int j, const uint8_t* q, uint8_t& d, uint8_t& m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Blocks are read with memcpy: GGUF data is only 32-byte aligned per tensor, block sizes are odd.
template <class Block>
Block load_block(const void* src, int64_t i) {
  Block b;
  std::memcpy(&b, static_cast<const char*>(src) + i * int64_t(sizeof(Block)), sizeof(Block));
  return b;
}

void dequantize_q8_0(const void* src, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQk; ++i) {
    const auto b = load_block<BlockQ8_0>(src, i);
    const float d = f16_to_f32(b.d);
    for (int64_t j = 0; j < kQk; ++j) y[i * kQk + j] = float(b.qs[j]) * d;
  }
}

void dequantize_q4_0(const void* src, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQk; ++i) {
    const auto b = load_block<BlockQ4_0>(src, i);
    const float d = f16_to_f32(b.d);
    for (int64_t j = 0; j < kQk / 2; ++j) {
      y[i * kQk + j] = float((b.qs[j] & 0x0F) - 8) * d;
      y[i * kQk + j + kQk / 2] = float((b.qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_q4_k(const void* src, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQkK; ++i) {
    const auto b = load_block<BlockQ4_K>(src, i);
    const float d = f16_to_f32(b.d), min = f16_to_f32(b.dmin);
    const uint8_t* q = b.qs;
    for (int j = 0, is = 0; j < kQkK; j += 64, q += 32, is += 2) {
      uint8_t sc, m;
      scale_min_k4(is, b.scales, sc, m);
      const float d1 = d * sc, m1 = min * m;
      scale_min_k4(is + 1, b.scales, sc, m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
    }
  }
}

void dequantize_q6_k(const void* src, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQkK; ++i) {
    const auto b = load_block<BlockQ6_K>(src, i);
    const float d = f16_to_f32(b.d);
    const uint8_t* ql = b.ql;
    const uint8_t* qh = b.qh;
    const int8_t* sc = b.scales;
    for (int part = 0; part < kQkK; part += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * float(sc[is]) * float(q1);
        y[l + 32] = d * float(sc[is + 2]) * float(q2);
        y[l + 64] = d * float(sc[is + 4]) * float(q3);
        y[l + 96] = d * float(sc[is + 6]) * float(q4);
      }
    }
  }
}

void quantize_q8_0(const float* x, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / kQk; ++i) {
    float amax = 0;
    for (int64_t j = 0; j < kQk; ++j) amax = std::max(amax, std::fabs(x[i * kQk + j]));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    BlockQ8_0 b;
    b.d = f32_to_f16(d);
    for (int64_t j = 0; j < kQk; ++j) b.qs[j] = int8_t(std::roundf(x[i * kQk + j] * id));
    std::memcpy(static_cast<char*>(dst) + i * int64_t(sizeof b), &b, sizeof b);
  }
}

void quantize_q4_0(const float* x, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / kQk; ++i) {
    const float* v = x + i * kQk;
    float amax = 0, max = 0;  // the value of largest magnitude, with its sign
    for (int64_t j = 0; j < kQk; ++j)
      if (amax < std::fabs(v[j])) amax = std::fabs(v[j]), max = v[j];
    const float d = max / -8.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    BlockQ4_0 b;
    b.d = f32_to_f16(d);
    for (int64_t j = 0; j < kQk / 2; ++j) {
      const auto lo = uint8_t(std::min<int>(15, int(int8_t(v[j] * id + 8.5f))));
      const auto hi = uint8_t(std::min<int>(15, int(int8_t(v[j + kQk / 2] * id + 8.5f))));
      b.qs[j] = uint8_t(lo | (hi << 4));
    }
    std::memcpy(static_cast<char*>(dst) + i * int64_t(sizeof b), &b, sizeof b);
  }
}

void check_row(GgmlType type, int64_t n) {
  if (n < 0 || n % ggml_block_values(type) != 0)
    fail("a row of {} values is not a whole number of {} blocks ({} values each)", n, ggml_type_name(uint32_t(type)),
         ggml_block_values(type));
}

}  // namespace

std::optional<GgmlType> ggml_type_from_number(uint32_t number) {
  switch (number) {
    case 0:
      return GgmlType::F32;
    case 1:
      return GgmlType::F16;
    case 2:
      return GgmlType::Q4_0;
    case 8:
      return GgmlType::Q8_0;
    case 12:
      return GgmlType::Q4_K;
    case 14:
      return GgmlType::Q6_K;
    case 30:
      return GgmlType::BF16;
    default:
      return std::nullopt;
  }
}

std::string ggml_type_name(uint32_t number) {
  static const char* const kNames[] = {"F32",     "F16",    "Q4_0",    "Q4_1",  "Q4_2",   "Q4_3",  "Q5_0",  "Q5_1",
                                       "Q8_0",    "Q8_1",   "Q2_K",    "Q3_K",  "Q4_K",   "Q5_K",  "Q6_K",  "Q8_K",
                                       "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS",
                                       "I8",      "I16",    "I32",     "I64",   "F64",    "IQ1_M", "BF16"};
  if (number < std::size(kNames) && number != 4 && number != 5) return kNames[number];
  return "type " + std::to_string(number);
}

std::optional<GgmlType> parse_ggml_type(std::string_view name) {
  std::string upper(name);
  for (auto& c : upper) c = char(std::toupper(static_cast<unsigned char>(c)));
  for (uint32_t n : {0u, 1u, 2u, 8u, 12u, 14u, 30u})
    if (ggml_type_name(n) == upper) return ggml_type_from_number(n);
  return std::nullopt;
}

int64_t ggml_block_values(GgmlType type) {
  switch (type) {
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
      return kQk;
    case GgmlType::Q4_K:
    case GgmlType::Q6_K:
      return kQkK;
    default:
      return 1;
  }
}

int64_t ggml_block_bytes(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
      return 4;
    case GgmlType::F16:
    case GgmlType::BF16:
      return 2;
    case GgmlType::Q8_0:
      return sizeof(BlockQ8_0);
    case GgmlType::Q4_0:
      return sizeof(BlockQ4_0);
    case GgmlType::Q4_K:
      return sizeof(BlockQ4_K);
    case GgmlType::Q6_K:
      return sizeof(BlockQ6_K);
  }
  fail("unknown GGML type {}", uint32_t(type));
}

int64_t ggml_row_bytes(GgmlType type, int64_t n) {
  check_row(type, n);
  return n / ggml_block_values(type) * ggml_block_bytes(type);
}

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  check_row(type, n);
  switch (type) {
    case GgmlType::F32:
      std::memcpy(dst, src, size_t(n) * 4);
      return;
    case GgmlType::F16:
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t v;
        std::memcpy(&v, static_cast<const char*>(src) + 2 * i, 2);
        dst[i] = type == GgmlType::F16 ? f16_to_f32(v) : bf16_to_f32(v);
      }
      return;
    case GgmlType::Q8_0:
      return dequantize_q8_0(src, dst, n);
    case GgmlType::Q4_0:
      return dequantize_q4_0(src, dst, n);
    case GgmlType::Q4_K:
      return dequantize_q4_k(src, dst, n);
    case GgmlType::Q6_K:
      return dequantize_q6_k(src, dst, n);
  }
}

void quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
  check_row(type, n);
  switch (type) {
    case GgmlType::F32:
      std::memcpy(dst, src, size_t(n) * 4);
      return;
    case GgmlType::F16:
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t v = type == GgmlType::F16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
        std::memcpy(static_cast<char*>(dst) + 2 * i, &v, 2);
      }
      return;
    case GgmlType::Q8_0:
      return quantize_q8_0(src, dst, n);
    case GgmlType::Q4_0:
      return quantize_q4_0(src, dst, n);
    case GgmlType::Q4_K:
    case GgmlType::Q6_K:
      fail("quantizing to {} is not supported (troupe reads K-quants)", ggml_type_name(uint32_t(type)));
  }
}

}  // namespace troupe
