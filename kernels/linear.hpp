#pragma once
// linear: out[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n]) — the weight in Hugging Face [out, in]
// layout, f32 activations, f32 or bf16 weights, f32 accumulation.
//
// Every output element is accumulated in the same order whatever M, N or the thread count (one
// vector accumulator per element over k, a fixed horizontal sum, bias last), so a sequence gets
// bit-identical logits alone or in a batch.
#include "kernels/tensor.hpp"

namespace troupe {

// x: [M, K] f32 with contiguous rows (row stride may exceed K); w: [N, K] f32 or bf16 with
// contiguous rows (a column slice of a bigger matrix is fine); bias: [N] f32 or undefined;
// out: [M, N] f32 with contiguous rows.
void linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out);
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias = Tensor());

}  // namespace troupe
