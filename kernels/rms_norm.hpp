#pragma once
// RMSNorm (Llama): y = x / sqrt(mean(x^2) + eps) * weight, computed in f32 per row.
#include "kernels/tensor.hpp"

namespace troupe {

// x, out: [M, D] f32 (may alias); weight: [D] f32, bf16 or f16.
void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out);
// The pre-norm residual step in one pass: residual += x; x = rms_norm(residual). When `residual`
// is undefined-on-entry semantics are the caller's: use rms_norm for the first layer.
void add_rms_norm(Tensor& x, Tensor& residual, const Tensor& weight, float eps);
// Per-head RMSNorm over the last `head_dim` elements (Qwen3 q/k norm): x [M, H * head_dim] in place.
void head_rms_norm(Tensor& x, int64_t head_dim, const Tensor& weight, float eps);

}  // namespace troupe
