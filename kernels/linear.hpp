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
// Quantized panels (WeightFormat::Q8_0 / Q4_0, ggml's blocks of 32 values along k with one f16
// scale each, quantized by kernels/quant_blocks' rounding): per panel and 32-value block of k, the
// 32 rows' scales, then the values k-major (Q8_0: 32 int8 per k; Q4_0: 16 bytes per k, low nibble
// = rows 0-15, high nibble = rows 16-31). 1.0625 and 0.5625 bytes per weight. The kernels turn
// each block value into f32 as ggml's dequantization does (q * d) and accumulate exactly as the f32
// panels do: a quantized weight gives bit for bit the outputs of its dequantized f32 weight.
//
// Every output element accumulates sequentially over k with fused multiply-adds, whatever M, N
// or the thread count, and the bias is added last: a sequence's logits are bit-identical alone or
// in a batch.
#include <string_view>

#include "kernels/tensor.hpp"

namespace troupe {

// How a PackedWeight holds its values: as floats (f32, or bf16 kept bf16), or quantized.
enum class WeightFormat : uint8_t { Float, Q8_0, Q4_0 };
const char* weight_format_name(WeightFormat format);  // "float", "q8_0", "q4_0"
// "q8_0" / "q4_0" (any case) or "none"/"float"/"" (Float); throws naming the accepted values otherwise.
WeightFormat parse_weight_format(std::string_view name);

class PackedWeight {
 public:
  static constexpr int64_t kPanel = 32;
  static constexpr int64_t kQuantBlock = 32;  // values of k per Q8_0 / Q4_0 block (a shard boundary must fall on one)
  PackedWeight() = default;
  // w: [N, K] f32/bf16/f16 with contiguous rows (a column slice of a larger matrix is fine).
  // Float: bf16 stays bf16, f32 stays f32, f16 becomes f32. Q8_0 / Q4_0: each row's 32-value
  // blocks are quantized; K not a multiple of 32 keeps the float format (format() says which).
  // Quantizing values that are themselves dequantized blocks of that format (a GGUF file's)
  // reproduces those blocks exactly.
  explicit PackedWeight(const Tensor& w, WeightFormat format = WeightFormat::Float);

  bool defined() const { return data_.defined(); }
  int64_t out_features() const { return n_; }
  int64_t in_features() const { return k_; }
  DType dtype() const { return data_.dtype(); }
  WeightFormat format() const { return format_; }
  const Tensor& data() const { return data_; }
  size_t nbytes() const { return data_.defined() ? data_.nbytes() : 0; }

 private:
  int64_t n_ = 0, k_ = 0;
  WeightFormat format_ = WeightFormat::Float;
  Tensor data_;  // [panels, K, 32] f32, [panels, K, 16] u32 holding bf16 pairs, or quantized bytes (U8)
};

// x: [M, K] f32 with contiguous rows; bias: [N] f32 or undefined; out: [M, N] f32, contiguous rows.
void linear(const Tensor& x, const PackedWeight& w, const Tensor& bias, Tensor& out);
Tensor linear(const Tensor& x, const PackedWeight& w, const Tensor& bias = Tensor());

}  // namespace troupe
