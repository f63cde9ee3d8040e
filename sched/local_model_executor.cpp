#include "sched/local_model_executor.hpp"

#include <algorithm>

#include "kernels/error.hpp"
#include "model/parallel_layout.hpp"

namespace troupe {

int64_t kv_blocks_for(const KvCacheOptions& kv, const ModelConfig& config, int tp, int pp,
                      const std::vector<int64_t>& pp_partition) {
  if (kv.num_blocks > 0) return kv.num_blocks;
  const auto stages = stage_layer_counts(config.num_hidden_layers, pp, pp_partition);
  const int64_t layers = *std::max_element(stages.begin(), stages.end());
  const auto [kv_begin, kv_end] = kv_head_range(config.num_key_value_heads, tp, 0);
  const int64_t kv_heads = kv_end - kv_begin;
  // The budget decides, as vLLM's gpu_memory_utilization does: a 128k-context model must not
  // reserve a whole context per rank by default. A request that could outgrow the cache is refused
  // by the scheduler with the numbers named.
  int64_t blocks = KvCache::blocks_for_budget(kv.budget_bytes, layers, kv.block_size, kv_heads, config.head_dim);
  if (blocks < 1)
    fail("a KV cache budget of {} bytes holds no block of {} tokens ({} layers x {} kv heads x head_dim {})",
         kv.budget_bytes, kv.block_size, layers, kv_heads, config.head_dim);
  return blocks;
}

LocalModelExecutor::LocalModelExecutor(const std::filesystem::path& model_dir, const KvCacheOptions& kv,
                                       const std::function<void(int64_t, int64_t)>& on_progress, WeightFormat quantize)
    : config_(ModelConfig::load(model_dir)), weights_(WeightStore::open(model_dir, quantize)) {
  model_ = std::make_unique<LlamaModel>(config_, weights_, ParallelLayout{}, nullptr, on_progress);
  weights_ = WeightStore();  // the model keeps what it views; a GGUF file's dequantized copies go
  cache_ = model_->make_kv_cache(kv_blocks_for(kv, config_), kv.block_size);
}

Tensor LocalModelExecutor::execute(const ForwardBatch& batch) {
  StageActivations activations;
  return model_->forward(batch, cache_, activations);
}

}  // namespace troupe
