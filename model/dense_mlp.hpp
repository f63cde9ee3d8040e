#pragma once
// DenseMlp: the gated SiLU MLP (down(silu(gate(x)) * up(x))) of Llama-family layers. Under tensor
// parallelism gate/up are column-parallel (merged into one [2 * I_r, hidden] matrix) and down is
// row-parallel; the caller all-reduces the partial output.
#include <string>

#include "kernels/linear.hpp"
#include "kernels/tensor.hpp"
#include "model/parallel_layout.hpp"
#include "model/weight_store.hpp"

namespace troupe {

class DenseMlp {
 public:
  DenseMlp() = default;
  // `prefix` is e.g. "model.layers.3.mlp"; `intermediate` the full (unsplit) size.
  DenseMlp(const WeightStore& weights, const std::string& prefix, int64_t hidden, int64_t intermediate,
           const ParallelLayout& layout);
  // From checkpoint tensors gate/up [I, hidden] and down [hidden, I], keeping tp part `rank` of
  // `parts` of the intermediate size (parts 1: the whole MLP, as an expert-parallel rank holds it).
  DenseMlp(const Tensor& gate, const Tensor& up, const Tensor& down, int rank, int parts);
  bool defined() const { return gate_up_.defined(); }
  // x: [T, hidden] -> partial [T, hidden] (sum over the tp group is the true output).
  Tensor forward(const Tensor& x) const;
  size_t weight_bytes() const;

 private:
  PackedWeight gate_up_;  // [2 * I_r, hidden]
  PackedWeight down_;     // [hidden, I_r] (a column slice of the checkpoint's [hidden, I])
};

}  // namespace troupe
