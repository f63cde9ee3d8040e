#include "comm/reduce_ops.hpp"

#include <algorithm>

#include "kernels/error.hpp"

namespace troupe {

void check_reducible(DType dtype, const char* what) {
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::F16)
    fail("{}: dtype {} cannot be reduced (expected f32, bf16 or f16)", what, dtype_name(dtype));
}

namespace {

struct F32Io {
  static float load(const void* p, int64_t i) { return static_cast<const float*>(p)[i]; }
  static void store(void* p, int64_t i, float v) { static_cast<float*>(p)[i] = v; }
};
struct Bf16Io {
  static float load(const void* p, int64_t i) { return bf16_to_f32(static_cast<const uint16_t*>(p)[i]); }
  static void store(void* p, int64_t i, float v) { static_cast<uint16_t*>(p)[i] = f32_to_bf16(v); }
};
struct F16Io {
  static float load(const void* p, int64_t i) { return f16_to_f32(static_cast<const uint16_t*>(p)[i]); }
  static void store(void* p, int64_t i, float v) { static_cast<uint16_t*>(p)[i] = f32_to_f16(v); }
};

template <typename Io, bool IsSum>
void reduce_typed(void* out, const void* const* srcs, int count, int64_t n) {
  // Blocked so the accumulator stays in L1 while sources stream through.
  constexpr int64_t kBlock = 1024;
  float acc[kBlock];
  for (int64_t base = 0; base < n; base += kBlock) {
    int64_t len = std::min(kBlock, n - base);
    for (int64_t i = 0; i < len; ++i) acc[i] = Io::load(srcs[0], base + i);
    for (int s = 1; s < count; ++s) {
      const void* src = srcs[s];
      for (int64_t i = 0; i < len; ++i) {
        float v = Io::load(src, base + i);
        acc[i] = IsSum ? acc[i] + v : std::max(acc[i], v);
      }
    }
    for (int64_t i = 0; i < len; ++i) Io::store(out, base + i, acc[i]);
  }
}

template <typename Io>
void reduce_dispatch(void* out, const void* const* srcs, int count, int64_t n, ReduceOp op) {
  if (op == ReduceOp::Sum)
    reduce_typed<Io, true>(out, srcs, count, n);
  else
    reduce_typed<Io, false>(out, srcs, count, n);
}

}  // namespace

void reduce_many(void* out, const void* const* srcs, int count, int64_t n, DType dtype, ReduceOp op) {
  switch (dtype) {
    case DType::F32:
      return reduce_dispatch<F32Io>(out, srcs, count, n, op);
    case DType::BF16:
      return reduce_dispatch<Bf16Io>(out, srcs, count, n, op);
    case DType::F16:
      return reduce_dispatch<F16Io>(out, srcs, count, n, op);
    default:
      check_reducible(dtype, "reduce");
  }
}

void reduce_into(void* acc, const void* src, int64_t n, DType dtype, ReduceOp op) {
  const void* srcs[2] = {acc, src};
  reduce_many(acc, srcs, 2, n, dtype, op);
}

}  // namespace troupe
