#pragma once
// LocalModelExecutor: a whole model on this rank (tp 1, pp 1) with its own KV cache.
#include <filesystem>
#include <functional>
#include <memory>

#include "model/llama_model.hpp"
#include "model/weight_store.hpp"
#include "sched/model_executor.hpp"

namespace troupe {

struct KvCacheOptions {
  int64_t block_size = 16;
  int64_t num_blocks = 0;              // 0: derive from the budget
  int64_t budget_bytes = 256ll << 20;  // used when num_blocks is 0
};

class LocalModelExecutor : public ModelExecutor {
 public:
  // quantize: Q8_0 / Q4_0 quantizes the float linear weights at load (WeightStore::open).
  LocalModelExecutor(const std::filesystem::path& model_dir, const KvCacheOptions& kv = {},
                     const std::function<void(int64_t, int64_t)>& on_progress = {},
                     WeightFormat quantize = WeightFormat::Float);
  const ModelConfig& config() const override { return config_; }
  int64_t num_kv_blocks() const override { return cache_.num_blocks(); }
  int64_t kv_block_size() const override { return cache_.block_size(); }
  Tensor execute(const ForwardBatch& batch) override;
  LlamaModel& model() { return *model_; }

 private:
  ModelConfig config_;
  WeightStore weights_;
  std::unique_ptr<LlamaModel> model_;
  KvCache cache_;
};

// The one KV-cache sizing: blocks per rank of a tp x pp split for a budget (or the explicit count),
// on its stage with the most layers; every rank allocates them. Throws when the budget holds none.
int64_t kv_blocks_for(const KvCacheOptions& kv, const ModelConfig& config, int tp = 1, int pp = 1,
                      const std::vector<int64_t>& pp_partition = {});

}  // namespace troupe
