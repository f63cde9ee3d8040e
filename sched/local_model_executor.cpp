#include "sched/local_model_executor.hpp"

namespace troupe {

int64_t kv_blocks_for(const KvCacheOptions& kv, const ModelConfig& config, int64_t layers, int64_t kv_heads) {
  if (kv.num_blocks > 0) return kv.num_blocks;
  int64_t blocks = KvCache::blocks_for_budget(kv.budget_bytes, layers, kv.block_size, kv_heads, config.head_dim);
  int64_t one_sequence = (config.max_position_embeddings + kv.block_size - 1) / kv.block_size;
  return std::max(blocks, one_sequence);
}

LocalModelExecutor::LocalModelExecutor(const std::filesystem::path& model_dir, const KvCacheOptions& kv,
                                       const std::function<void(int64_t, int64_t)>& on_progress)
    : config_(ModelConfig::load(model_dir)), weights_(WeightStore::open(model_dir)) {
  model_ = std::make_unique<LlamaModel>(config_, weights_, ParallelLayout{}, nullptr, on_progress);
  cache_ = model_->make_kv_cache(kv_blocks_for(kv, config_, config_.num_hidden_layers, config_.num_key_value_heads),
                                 kv.block_size);
}

Tensor LocalModelExecutor::execute(const ForwardBatch& batch) {
  StageActivations activations;
  return model_->forward(batch, cache_, activations);
}

}  // namespace troupe
