#include "kernels/dtype.hpp"

#include <iterator>

#include "kernels/error.hpp"

namespace troupe {

namespace {

// Indexed by DType, in the enum's order: F32, BF16, F16, I32, I64, U8.
constexpr size_t kSizes[] = {4, 2, 2, 4, 8, 1};
constexpr const char* kNames[] = {"f32", "bf16", "f16", "i32", "i64", "u8"};
static_assert(std::size(kSizes) == size_t(DType::U8) + 1 && std::size(kNames) == std::size(kSizes));

}  // namespace

size_t dtype_size(DType dtype) { return size_t(dtype) < std::size(kSizes) ? kSizes[size_t(dtype)] : 0; }

const char* dtype_name(DType dtype) { return size_t(dtype) < std::size(kNames) ? kNames[size_t(dtype)] : "?"; }

DType parse_dtype(std::string_view name) {
  if (name == "f32" || name == "F32" || name == "float32") return DType::F32;
  if (name == "bf16" || name == "BF16" || name == "bfloat16") return DType::BF16;
  if (name == "f16" || name == "F16" || name == "float16") return DType::F16;
  if (name == "i32" || name == "I32" || name == "int32") return DType::I32;
  if (name == "i64" || name == "I64" || name == "int64") return DType::I64;
  if (name == "u8" || name == "U8" || name == "uint8") return DType::U8;
  fail("unknown dtype '{}' (expected one of f32, bf16, f16, i32, i64, u8)", name);
}

// IEEE half <-> single by bit manipulation (subnormals, infinities and NaN handled).
float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      bits = sign | (uint32_t(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  uint32_t sign = (bits >> 16) & 0x8000u;
  int32_t exp = int32_t((bits >> 23) & 0xffu) - 127 + 15;
  uint32_t mant = bits & 0x7fffffu;
  if (((bits >> 23) & 0xffu) == 0xffu) return uint16_t(sign | 0x7c00u | (mant ? 0x200u : 0));
  if (exp >= 0x1f) return uint16_t(sign | 0x7c00u);
  if (exp <= 0) {
    if (exp < -10) return uint16_t(sign);
    mant |= 0x800000u;
    uint32_t shift = uint32_t(14 - exp);
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1u))) ++half;
    return uint16_t(sign | half);
  }
  uint32_t half = sign | (uint32_t(exp) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;
  return uint16_t(half);
}

}  // namespace troupe
