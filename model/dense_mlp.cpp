#include "model/dense_mlp.hpp"

#include <cstring>

#include "kernels/activation.hpp"
#include "kernels/error.hpp"
#include "kernels/linear.hpp"

namespace troupe {

DenseMlp::DenseMlp(const WeightStore& weights, const std::string& prefix, int64_t hidden, int64_t intermediate,
                   const ParallelLayout& layout)
    : DenseMlp(weights.get(prefix + ".gate_proj.weight", {intermediate, hidden}),
               weights.get(prefix + ".up_proj.weight", {intermediate, hidden}),
               weights.get(prefix + ".down_proj.weight", {hidden, intermediate}), layout.tp_rank, layout.tp_size) {}

DenseMlp::DenseMlp(const Tensor& gate, const Tensor& up, const Tensor& down, int rank, int parts) {
  auto [begin, end] = balanced_range(gate.size(0), parts, rank);
  gate_up_ = PackedWeight(concat_rows({gate.slice(0, begin, end), up.slice(0, begin, end)}));
  down_ = PackedWeight(down.slice(1, begin, end));
}

Tensor DenseMlp::forward(const Tensor& x) const {
  Tensor gate_up = linear(x, gate_up_);
  Tensor act = silu_and_mul(gate_up);
  return linear(act, down_);
}

size_t DenseMlp::weight_bytes() const { return gate_up_.nbytes() + down_.nbytes(); }

}  // namespace troupe
