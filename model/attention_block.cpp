#include "model/attention_block.hpp"

#include <cmath>

#include "kernels/paged_attention.hpp"
#include "kernels/rms_norm.hpp"

namespace troupe {

AttentionBlock::AttentionBlock(const WeightStore& weights, const std::string& prefix, const ModelConfig& c,
                               TpGroup group)
    : head_dim_(c.head_dim),
      eps_(c.rms_norm_eps),
      qkv_proj_(weights, prefix, c, group),
      o_proj_(weights, prefix + ".o_proj", c.hidden_size, c.q_size(), group) {
  if (c.qk_norm) {
    q_norm_ = weights.get(prefix + ".q_norm.weight", {c.head_dim});
    k_norm_ = weights.get(prefix + ".k_norm.weight", {c.head_dim});
  }
}

Tensor AttentionBlock::forward(const Tensor& x, const ForwardBatch& batch, const RotaryEmbedding& rope, Tensor& k_cache,
                               Tensor& v_cache, const ContextParallelPlan* cp) const {
  const int64_t qd = qkv_proj_.local_q_heads() * head_dim_, kvd = qkv_proj_.local_kv_heads() * head_dim_;
  Tensor qkv = qkv_proj_.forward(x);
  Tensor q = qkv.slice(1, 0, qd), k = qkv.slice(1, qd, qd + kvd), v = qkv.slice(1, qd + kvd, qd + 2 * kvd);
  if (q_norm_.defined()) {
    head_rms_norm(q, head_dim_, q_norm_, eps_);
    head_rms_norm(k, head_dim_, k_norm_, eps_);
  }
  const float scale = 1.0f / std::sqrt(float(head_dim_));
  if (cp) {
    rope.apply(q, k, cp->local_positions());
    return o_proj_.forward(context_parallel_attention(q, k, v, qkv_proj_.local_q_heads(), qkv_proj_.local_kv_heads(),
                                                      head_dim_, scale, *cp, k_cache, v_cache));
  }
  rope.apply(q, k, batch.attention.positions);
  write_kv_cache(k, v, k_cache, v_cache, batch.attention);
  Tensor attn = paged_attention(q, k_cache, v_cache, batch.attention, qkv_proj_.local_q_heads(), scale);
  return o_proj_.forward(attn);
}

size_t AttentionBlock::weight_bytes() const {
  size_t b = qkv_proj_.weight_bytes() + o_proj_.weight_bytes();
  for (const Tensor* t : {&q_norm_, &k_norm_})
    if (t->defined()) b += t->nbytes();
  return b;
}

}  // namespace troupe
