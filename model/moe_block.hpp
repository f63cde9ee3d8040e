#pragma once
// MoeBlock: a sparse mixture-of-experts MLP (Mixtral, Qwen2-MoE). Placeholder until the MoE issue
// lands: loading a MoE checkpoint fails with a clear message.
#include <set>
#include <string>

#include "kernels/tensor.hpp"
#include "model/model_config.hpp"
#include "model/parallel_layout.hpp"
#include "model/tensor_parallel_ops.hpp"
#include "model/weight_store.hpp"

namespace troupe {

class MoeBlock {
 public:
  MoeBlock(const WeightStore& weights, const std::string& layer_prefix, const ModelConfig& config,
           const ParallelLayout& layout, TensorParallelOps* tp_ops);
  Tensor forward(const Tensor& x);
  size_t weight_bytes() const { return 0; }
  static std::set<std::string> expected_tensor_names(const ModelConfig& config, const std::string& layer_prefix);
};

}  // namespace troupe
