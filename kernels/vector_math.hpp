#pragma once
// Small vector primitives used inside kernels (dot products, y += a * x),
// dispatched once to AVX-512, AVX2 or scalar code by CpuFeatures.
#include <cstdint>

namespace troupe::vec {

float dot(const float* a, const float* b, int64_t n);
void axpy(float alpha, const float* x, float* y, int64_t n);  // y += alpha * x

}  // namespace troupe::vec
