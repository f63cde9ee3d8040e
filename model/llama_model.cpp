#include "model/llama_model.hpp"

#include <fmt/format.h>

#include <optional>

#include "kernels/error.hpp"
#include "kernels/moe_routing.hpp"
#include "kernels/rms_norm.hpp"
#include "model/moe_block.hpp"

namespace troupe {

LlamaModel::~LlamaModel() = default;

std::set<std::string> LlamaModel::expected_tensor_names(const ModelConfig& c) {
  std::set<std::string> names = {"model.embed_tokens.weight", "model.norm.weight"};
  if (!c.tie_word_embeddings) names.insert("lm_head.weight");
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    std::string p = fmt::format("model.layers.{}.", l);
    for (const char* n : {"input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.q_proj.weight",
                          "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight"})
      names.insert(p + n);
    if (c.attention_bias)
      for (const char* n : {"self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"})
        names.insert(p + n);
    if (c.qk_norm)
      for (const char* n : {"self_attn.q_norm.weight", "self_attn.k_norm.weight"}) names.insert(p + n);
    if (c.is_moe()) {
      for (const auto& n : MoeBlock::expected_tensor_names(c, p)) names.insert(n);
    } else {
      for (const char* n : {"mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"}) names.insert(p + n);
    }
  }
  return names;
}

LlamaModel::LlamaModel(const ModelConfig& config, const WeightStore& weights, const ParallelLayout& layout,
                       TensorParallelOps* tp_ops, const std::function<void(int64_t, int64_t)>& on_progress,
                       ContextParallelGroups cp, TensorParallelOps* ep_ops)
    : config_(config), layout_(layout), cp_(cp) {
  validate_layout(config, layout.tp_size, layout.pp_size, layout.pp_partition, layout.ep_size,
                  std::max(1, layout.ep_size / layout.tp_size));
  if (layout.wide_expert_parallel() && !ep_ops)
    fail("{}: expert parallelism over {} ranks needs the expert group's collectives", layout.describe(),
         layout.ep_size);
  validate_context_parallel(config, layout.tp_size, layout.cp_size, layout.ring_degree, layout.ulysses_degree);
  if (cp.ring_degree() != layout.ring_degree || cp.ulysses_degree() != layout.ulysses_degree)
    fail("{}: ring and ulysses groups of {} and {} ranks", layout.describe(), cp.ring_degree(), cp.ulysses_degree());
  const TpGroup tp = TpGroup::of(layout, tp_ops);
  weights.check_names(expected_tensor_names(config), {"rotary_emb.inv_freq"});
  std::tie(first_layer_, end_layer_) = layout.layer_range(config.num_hidden_layers);
  rope_ = RotaryEmbedding(config.head_dim, config.rope_theta, config.rope_scaling);
  const int64_t H = config.hidden_size, V = config.vocab_size;
  if (layout.first_stage()) embed_tokens_ = VocabParallelEmbedding(weights, "model.embed_tokens", V, H, tp);
  if (layout.last_stage()) {
    final_norm_ = weights.get("model.norm.weight", {H});
    lm_head_ = ParallelLMHead(weights, config.tie_word_embeddings ? "model.embed_tokens" : "lm_head", V, H, tp);
  }
  for (int64_t l = first_layer_; l < end_layer_; ++l) {
    std::string p = fmt::format("model.layers.{}", l);
    Layer layer;
    layer.input_norm = weights.get(p + ".input_layernorm.weight", {H});
    layer.post_norm = weights.get(p + ".post_attention_layernorm.weight", {H});
    layer.attention = AttentionBlock(weights, p + ".self_attn", config, tp);
    if (config.is_moe())
      layer.moe = std::make_unique<MoeBlock>(weights, p, config, layout, tp_ops, ep_ops);
    else
      layer.mlp = DenseMlp(weights, p + ".mlp", H, config.intermediate_size, tp);
    layers_.push_back(std::move(layer));
    if (on_progress) on_progress(l + 1 - first_layer_, end_layer_ - first_layer_);
  }
}

int64_t LlamaModel::kv_heads_per_rank() const {
  auto [b, e] = kv_head_range(config_.num_key_value_heads, layout_.tp_size, layout_.tp_rank);
  if (layout_.ulysses_degree == 1) return e - b;
  const UlyssesHeads h =
      ulysses_heads(config_.num_attention_heads / layout_.tp_size, e - b, layout_.ulysses_degree, layout_.ulysses_rank);
  return h.kv_end - h.kv_begin;  // the cache holds this rank's ulysses share of the heads
}

KvCache LlamaModel::make_kv_cache(int64_t num_blocks, int64_t block_size) const {
  return KvCache(end_layer_ - first_layer_, num_blocks, block_size, kv_heads_per_rank(), config_.head_dim);
}

Tensor LlamaModel::forward(const ForwardBatch& batch, KvCache& cache, StageActivations& act) {
  const int64_t T = batch.num_tokens();
  if (int64_t(batch.attention.positions.size()) != T || int64_t(batch.attention.sequence_of_token.size()) != T)
    fail("forward batch: {} tokens but {} positions and {} sequence indices", T, batch.attention.positions.size(),
         batch.attention.sequence_of_token.size());
  for (int32_t p : batch.attention.positions)
    if (p < 0 || p >= config_.max_position_embeddings)
      fail("position {} is outside the context of {} (max_position_embeddings)", p, config_.max_position_embeddings);
  // Under context parallelism this rank computes its share of the tokens (the plan's local tokens).
  std::optional<ContextParallelPlan> plan;
  if (cp_.size() > 1) plan.emplace(batch, cp_);
  const int64_t rows = plan ? int64_t(plan->local_tokens().size()) : T;
  Tensor hidden, residual;
  if (layout_.first_stage()) {
    hidden = embed_tokens_.forward(plan ? plan->local_token_ids() : batch.token_ids);
  } else {
    hidden = act.hidden_states;
    residual = act.residual;
    if (hidden.size(0) != rows)
      fail("stage {} received activations for {} tokens, expected {}", layout_.pp_rank, hidden.size(0), rows);
  }
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& layer = layers_[i];
    if (!residual.defined()) {
      residual = hidden.clone();
      rms_norm(residual, layer.input_norm, config_.rms_norm_eps, hidden);
    } else {
      add_rms_norm(hidden, residual, layer.input_norm, config_.rms_norm_eps);
    }
    hidden = layer.attention.forward(hidden, batch, rope_, cache.keys(int64_t(i)), cache.values(int64_t(i)),
                                     plan ? &*plan : nullptr);
    add_rms_norm(hidden, residual, layer.post_norm, config_.rms_norm_eps);
    hidden = layer.moe ? layer.moe->forward(hidden) : layer.mlp.forward(hidden);
  }
  if (!layout_.last_stage()) {
    act.hidden_states = hidden;
    act.residual = residual;
    return Tensor();
  }
  for (int64_t row : batch.logit_rows)
    if (row < 0 || row >= T) fail("logit row {} outside the batch of {} tokens", row, T);
  const std::vector<int64_t> local_rows = plan ? plan->local_logit_rows() : batch.logit_rows;
  Tensor selected = gather_rows(hidden, local_rows), selected_residual = gather_rows(residual, local_rows);
  add_rms_norm(selected, selected_residual, final_norm_, config_.rms_norm_eps);
  if (plan) selected = plan->gather_logit_rows(selected);  // every cp rank computes the same logits
  return lm_head_.forward(selected);
}

std::vector<std::vector<int64_t>> LlamaModel::expert_load() const {
  std::vector<std::vector<int64_t>> load;
  for (const auto& l : layers_)
    if (l.moe) load.push_back(l.moe->expert_load());
  return load;
}

void LlamaModel::reset_expert_load() {
  for (auto& l : layers_)
    if (l.moe) l.moe->reset_expert_load();
}

size_t LlamaModel::weight_bytes() const { return bytes_read_per_decode_step() + embed_tokens_.weight_bytes(); }

size_t LlamaModel::bytes_read_per_decode_step() const {
  size_t b = lm_head_.weight_bytes();
  if (final_norm_.defined()) b += final_norm_.nbytes();
  for (const auto& l : layers_) {
    b += l.input_norm.nbytes() + l.post_norm.nbytes() + l.attention.weight_bytes();
    b += l.moe ? l.moe->weight_bytes() : l.mlp.weight_bytes();
  }
  return b;
}

}  // namespace troupe
