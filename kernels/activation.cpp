#include "kernels/activation.hpp"

#include <cmath>

#include "kernels/error.hpp"

namespace troupe {

Tensor silu_and_mul(const Tensor& gate_up) {
  if (gate_up.dtype() != DType::F32 || gate_up.dim() != 2 || gate_up.size(1) % 2 || gate_up.strides()[1] != 1)
    fail("silu_and_mul: input must be f32 [M, 2I], got {}", gate_up.describe());
  const int64_t M = gate_up.size(0), I = gate_up.size(1) / 2;
  Tensor out = Tensor::empty({M, I}, DType::F32);
  for (int64_t m = 0; m < M; ++m) {
    const float* g = gate_up.data<float>() + m * gate_up.strides()[0];
    float* o = out.data<float>() + m * I;
    for (int64_t i = 0; i < I; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * g[I + i];
  }
  return out;
}

}  // namespace troupe
