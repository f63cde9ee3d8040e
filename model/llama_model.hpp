#pragma once
// LlamaModel: the Llama-family decoder (llama, mistral, qwen2, qwen3) for one rank of a tensor x
// pipeline layout. The first stage embeds (vocab-parallel under tp), each stage runs its layers,
// the last stage applies the final norm and the LM head (vocab-parallel + all-gather of logits).
//
//   LlamaModel model(config, weights, layout, tp_ops);
//   KvCache cache = model.make_kv_cache(num_blocks, 16);
//   Tensor logits = model.forward(batch, cache, activations);   // [batch.logit_rows.size(), vocab]
#include <functional>
#include <memory>
#include <set>
#include <vector>

#include "kernels/rotary_embedding.hpp"
#include "model/attention_block.hpp"
#include "model/context_parallel.hpp"
#include "model/dense_mlp.hpp"
#include "model/forward_batch.hpp"
#include "model/kv_cache.hpp"
#include "model/model_config.hpp"
#include "model/parallel_layout.hpp"
#include "model/tensor_parallel_ops.hpp"
#include "model/vocab_parallel_embedding.hpp"
#include "model/weight_store.hpp"

namespace troupe {

class MoeBlock;

class LlamaModel {
 public:
  // tp_ops may be null when layout.tp_size == 1; cp's groups must match layout's ring and ulysses
  // degrees; ep_ops are the expert group's collectives when it spans replicas (wide expert
  // parallelism), else null (the tp group's serve). All borrowed for the model's lifetime.
  // on_progress(layers loaded, layers of this stage) reports loading.
  LlamaModel(const ModelConfig& config, const WeightStore& weights, const ParallelLayout& layout,
             TensorParallelOps* tp_ops = nullptr, const std::function<void(int64_t, int64_t)>& on_progress = {},
             ContextParallelGroups cp = {}, TensorParallelOps* ep_ops = nullptr);
  ~LlamaModel();

  const ModelConfig& config() const { return config_; }
  const ParallelLayout& layout() const { return layout_; }
  KvCache make_kv_cache(int64_t num_blocks, int64_t block_size) const;
  int64_t kv_heads_per_rank() const;

  // One step. On the first stage `activations` is output only; on later stages it is the input
  // from the previous stage (under context parallelism: the rows of this rank's tokens). On the last stage returns
  // logits [logit_rows, vocab] (full vocab on every tp rank); elsewhere returns an undefined tensor and leaves the
  // output in `activations`.
  Tensor forward(const ForwardBatch& batch, KvCache& cache, StageActivations& activations);

  size_t weight_bytes() const;  // bytes of weights this rank holds (packed, plus the mapped embedding)
  // Bytes one decode step streams from memory: every weight but the embedding table, of which a
  // step reads one row per token.
  size_t bytes_read_per_decode_step() const;

  // Mixture of experts: tokens routed to each expert ([layer of this stage][expert]), summed since
  // load or reset; empty for dense models. The same on every rank of a tp group.
  std::vector<std::vector<int64_t>> expert_load() const;
  void reset_expert_load();

  // The tensor names a checkpoint of this config must hold (all layers, all ranks).
  static std::set<std::string> expected_tensor_names(const ModelConfig& config);

 private:
  ModelConfig config_;
  ParallelLayout layout_;
  ContextParallelGroups cp_;
  int64_t first_layer_ = 0, end_layer_ = 0;
  RotaryEmbedding rope_;
  VocabParallelEmbedding embed_tokens_;  // first stage only
  ParallelLMHead lm_head_;               // last stage only (rows of the embedding when tied)
  Tensor final_norm_;
  struct Layer {
    Tensor input_norm, post_norm;
    AttentionBlock attention;
    DenseMlp mlp;
    std::unique_ptr<MoeBlock> moe;
  };
  std::vector<Layer> layers_;
};

}  // namespace troupe
