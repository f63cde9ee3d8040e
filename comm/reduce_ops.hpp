#pragma once
// Element-wise reductions used by the CPU backends (shm, ucx). bf16/f16 are accumulated in f32.
#include <cstdint>

#include "kernels/dtype.hpp"

namespace troupe {

enum class ReduceOp : uint8_t { Sum, Max };

// out[i] = op(srcs[0][i], ..., srcs[count-1][i]) in the order given, rounded once to dtype, so
// every rank that reduces the same inputs in the same order gets bit-identical results. `out` may
// alias one of the sources.
void reduce_many(void* out, const void* const* srcs, int count, int64_t n, DType dtype, ReduceOp op);

// acc[i] = op(acc[i], src[i]).
void reduce_into(void* acc, const void* src, int64_t n, DType dtype, ReduceOp op);

// Throws unless dtype is f32, bf16 or f16 (the types collectives reduce).
void check_reducible(DType dtype, const char* what);

}  // namespace troupe
