#include "model/moe_block.hpp"

#include "kernels/error.hpp"

namespace troupe {

MoeBlock::MoeBlock(const WeightStore&, const std::string&, const ModelConfig& config, const ParallelLayout&, TensorParallelOps*) {
  fail("model_type '{}' (mixture of experts) is not supported yet", config.model_type);
}

Tensor MoeBlock::forward(const Tensor&) { fail("mixture of experts is not supported yet"); }

std::set<std::string> MoeBlock::expected_tensor_names(const ModelConfig&, const std::string&) { return {}; }

}  // namespace troupe
