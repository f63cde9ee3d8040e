#include "model/attention_block.hpp"

#include <cmath>

#include "kernels/linear.hpp"
#include "kernels/paged_attention.hpp"
#include "kernels/rms_norm.hpp"

namespace troupe {

AttentionBlock::AttentionBlock(const WeightStore& weights, const std::string& prefix, const ModelConfig& c,
                               const ParallelLayout& layout)
    : head_dim_(c.head_dim), eps_(c.rms_norm_eps) {
  const int64_t D = c.head_dim, H = c.hidden_size;
  q_heads_ = c.num_attention_heads / layout.tp_size;
  auto [kv_begin, kv_end] = kv_head_range(c.num_key_value_heads, layout.tp_size, layout.tp_rank);
  kv_heads_ = kv_end - kv_begin;
  const int64_t q_begin = layout.tp_rank * q_heads_;

  Tensor q = weights.get(prefix + ".q_proj.weight", {c.q_size(), H});
  Tensor k = weights.get(prefix + ".k_proj.weight", {c.kv_size(), H});
  Tensor v = weights.get(prefix + ".v_proj.weight", {c.kv_size(), H});
  qkv_ = PackedWeight(concat_rows({q.slice(0, q_begin * D, (q_begin + q_heads_) * D),
                                   k.slice(0, kv_begin * D, kv_end * D), v.slice(0, kv_begin * D, kv_end * D)}));
  if (c.attention_bias) {
    auto bias = [&](const char* name, int64_t rows, int64_t b, int64_t e) {
      return weights.get(prefix + name, {rows}).view({rows, 1}).slice(0, b * D, e * D);
    };
    qkv_bias_ = concat_rows({bias(".q_proj.bias", c.q_size(), q_begin, q_begin + q_heads_),
                             bias(".k_proj.bias", c.kv_size(), kv_begin, kv_end),
                             bias(".v_proj.bias", c.kv_size(), kv_begin, kv_end)})
                    .to(DType::F32)
                    .view({-1});
  }
  if (c.qk_norm) {
    q_norm_ = weights.get(prefix + ".q_norm.weight", {D});
    k_norm_ = weights.get(prefix + ".k_norm.weight", {D});
  }
  Tensor o = weights.get(prefix + ".o_proj.weight", {H, c.q_size()});
  o_ = PackedWeight(o.slice(1, q_begin * D, (q_begin + q_heads_) * D));
}

Tensor AttentionBlock::forward(const Tensor& x, const ForwardBatch& batch, const RotaryEmbedding& rope, Tensor& k_cache,
                               Tensor& v_cache) const {
  const int64_t qd = q_heads_ * head_dim_, kvd = kv_heads_ * head_dim_;
  Tensor qkv = linear(x, qkv_, qkv_bias_);
  Tensor q = qkv.slice(1, 0, qd), k = qkv.slice(1, qd, qd + kvd), v = qkv.slice(1, qd + kvd, qd + 2 * kvd);
  if (q_norm_.defined()) {
    head_rms_norm(q, head_dim_, q_norm_, eps_);
    head_rms_norm(k, head_dim_, k_norm_, eps_);
  }
  rope.apply(q, k, batch.attention.positions);
  write_kv_cache(k, v, k_cache, v_cache, batch.attention);
  Tensor attn = paged_attention(q, k_cache, v_cache, batch.attention, q_heads_, 1.0f / std::sqrt(float(head_dim_)));
  return linear(attn, o_);
}

size_t AttentionBlock::weight_bytes() const {
  size_t b = qkv_.nbytes() + o_.nbytes();
  for (const Tensor* t : {&qkv_bias_, &q_norm_, &k_norm_})
    if (t->defined()) b += t->nbytes();
  return b;
}

}  // namespace troupe
