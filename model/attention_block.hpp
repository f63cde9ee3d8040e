#pragma once
// AttentionBlock: the self-attention of a Llama-family layer — merged QKV projection
// (column-parallel: this rank's query heads and its kv heads, replicated when kv_heads < tp),
// optional q/k/v bias (Qwen2) and per-head q/k RMSNorm (Qwen3), rotary embedding, paged causal
// attention, and the row-parallel output projection (the caller all-reduces the partial sum).
#include <string>

#include "kernels/linear.hpp"
#include "kernels/rotary_embedding.hpp"
#include "kernels/tensor.hpp"
#include "model/forward_batch.hpp"
#include "model/model_config.hpp"
#include "model/parallel_layout.hpp"
#include "model/weight_store.hpp"

namespace troupe {

class AttentionBlock {
 public:
  AttentionBlock() = default;
  AttentionBlock(const WeightStore& weights, const std::string& prefix, const ModelConfig& config,
                 const ParallelLayout& layout);
  // x: [T, hidden]; writes this layer's k/v into the caches; returns the partial [T, hidden].
  Tensor forward(const Tensor& x, const ForwardBatch& batch, const RotaryEmbedding& rope, Tensor& k_cache,
                 Tensor& v_cache) const;
  int64_t local_kv_heads() const { return kv_heads_; }
  size_t weight_bytes() const;

 private:
  int64_t q_heads_ = 0, kv_heads_ = 0, head_dim_ = 0;
  float eps_ = 1e-6f;
  PackedWeight qkv_, o_;
  Tensor qkv_bias_, q_norm_, k_norm_;
};

}  // namespace troupe
