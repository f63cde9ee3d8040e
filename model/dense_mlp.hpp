#pragma once
// DenseMlp: the gated SiLU MLP down(silu(gate(x)) * up(x)) of Llama-family layers and of MoE
// experts, composed of a MergedColumnParallelLinear (gate, up) and a RowParallelLinear (down) that
// all-reduces unless reduce_results is false (for a caller that sums several MLPs and reduces
// once). Ownership and lifetime as for those layers (parallel_linear.hpp).
#include <string>

#include "kernels/activation.hpp"
#include "model/parallel_linear.hpp"

namespace troupe {

struct MlpNames {  // the projections under a DenseMlp's prefix
  const char *gate = "gate_proj", *up = "up_proj", *down = "down_proj";
};

class DenseMlp {
 public:
  DenseMlp() = default;
  // `prefix` is e.g. "model.layers.3.mlp"; `intermediate` the full (unsplit) size.
  DenseMlp(const WeightStore& weights, const std::string& prefix, int64_t hidden, int64_t intermediate, TpGroup group,
           bool reduce_results = true, MlpNames names = {})
      : gate_up_proj_(weights, {prefix + "." + names.gate, prefix + "." + names.up}, intermediate, hidden, group),
        down_proj_(weights, prefix + "." + names.down, hidden, intermediate, group, reduce_results) {}
  bool defined() const { return down_proj_.defined(); }
  // [T, hidden] -> [T, hidden]
  Tensor forward(const Tensor& x) const { return down_proj_.forward(silu_and_mul(gate_up_proj_.forward(x))); }
  size_t weight_bytes() const { return gate_up_proj_.weight_bytes() + down_proj_.weight_bytes(); }

 private:
  MergedColumnParallelLinear gate_up_proj_;  // [2 * I_r, hidden]
  RowParallelLinear down_proj_;              // [hidden, I_r]
};

}  // namespace troupe
