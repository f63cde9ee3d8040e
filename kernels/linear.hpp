#pragma once
// Linear layers: out[m, n] = sum_k x[m, k] * W[n, k] (+ bias[n]), with f32 activations, f32 or
// bf16 weights and f32 accumulation.
//
// Weights are packed once at load time into panels of 32 output rows laid out k-major
// ([panel][k][32]), so decode (one row of x) streams each panel as one contiguous run and
// prefill broadcasts x against whole vectors of outputs. bf16 panels interleave two 16-row halves
// in each 32-bit lane (low half = rows 0-15, high half = rows 16-31): one shift or one mask turns a
// load into f32.
//
// Every output element accumulates sequentially over k with fused multiply-adds, whatever M, N
// or the thread count, and the bias is added last: a sequence's logits are bit-identical alone or
// in a batch.
#include "kernels/tensor.hpp"

namespace troupe {

class PackedWeight {
 public:
  static constexpr int64_t kPanel = 32;
  PackedWeight() = default;
  // w: [N, K] f32/bf16/f16 with contiguous rows (a column slice of a larger matrix is fine).
  // bf16 stays bf16, f32 stays f32, f16 becomes f32.
  explicit PackedWeight(const Tensor& w);

  bool defined() const { return data_.defined(); }
  int64_t out_features() const { return n_; }
  int64_t in_features() const { return k_; }
  DType dtype() const { return data_.dtype(); }
  const Tensor& data() const { return data_; }
  size_t nbytes() const { return data_.defined() ? data_.nbytes() : 0; }

 private:
  int64_t n_ = 0, k_ = 0;
  Tensor data_;  // [panels, K, 32] f32, or [panels, K, 16] u32 holding bf16 pairs
};

// x: [M, K] f32 with contiguous rows; bias: [N] f32 or undefined; out: [M, N] f32, contiguous rows.
void linear(const Tensor& x, const PackedWeight& w, const Tensor& bias, Tensor& out);
Tensor linear(const Tensor& x, const PackedWeight& w, const Tensor& bias = Tensor());

}  // namespace troupe
