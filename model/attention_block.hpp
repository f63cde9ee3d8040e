#pragma once
// AttentionBlock: the self-attention of a Llama-family layer — the merged QKV projection
// (QKVParallelLinear: this rank's query heads and its kv heads, replicated when kv_heads < tp),
// optional q/k/v bias (Qwen2) and per-head q/k RMSNorm (Qwen3), rotary embedding, paged causal
// attention, and the output projection (RowParallelLinear, all-reduced over the tp group).
// Ownership and lifetime as for those layers (parallel_linear.hpp).
#include <string>

#include "kernels/rotary_embedding.hpp"
#include "kernels/tensor.hpp"
#include "model/context_parallel.hpp"
#include "model/forward_batch.hpp"
#include "model/model_config.hpp"
#include "model/parallel_linear.hpp"

namespace troupe {

class AttentionBlock {
 public:
  AttentionBlock() = default;
  AttentionBlock(const WeightStore& weights, const std::string& prefix, const ModelConfig& config, TpGroup group);
  // x: [T, hidden]; writes this layer's k/v into the caches; returns [T, hidden] (reduced over tp).
  // Under context parallelism (`cp` non-null) x holds this rank's tokens only (cp->local_tokens()).
  Tensor forward(const Tensor& x, const ForwardBatch& batch, const RotaryEmbedding& rope, Tensor& k_cache,
                 Tensor& v_cache, const ContextParallelPlan* cp = nullptr) const;
  int64_t local_q_heads() const { return qkv_proj_.local_q_heads(); }
  int64_t local_kv_heads() const { return qkv_proj_.local_kv_heads(); }
  size_t weight_bytes() const;

 private:
  int64_t head_dim_ = 0;
  float eps_ = 1e-6f;
  QKVParallelLinear qkv_proj_;
  RowParallelLinear o_proj_;
  Tensor q_norm_, k_norm_;
};

}  // namespace troupe
