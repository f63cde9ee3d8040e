#include "model/parallel_linear.hpp"

#include "kernels/error.hpp"

namespace troupe {

TpGroup TpGroup::of(const ParallelLayout& layout, TensorParallelOps* ops) {
  if (layout.tp_size > 1 && !ops) fail("tensor_parallel_size {} needs tensor-parallel collectives", layout.tp_size);
  return {layout.tp_rank, layout.tp_size, ops};
}

ColumnParallelLinear::ColumnParallelLinear(const WeightStore& weights, const std::string& name, int64_t out, int64_t in,
                                           TpGroup group, bool gather_output) {
  auto [begin, end] = group.part(out);
  load(weights, {{name, out, begin, end}}, in, group, false);
  if (gather_output && group.size > 1) gathered_widths_ = balanced_sizes(out, group.size);
}

void ColumnParallelLinear::load(const WeightStore& weights, const std::vector<Part>& parts, int64_t in, TpGroup group,
                                bool bias) {
  group_ = group;
  std::vector<Tensor> rows, biases;
  for (const Part& p : parts) {
    rows.push_back(weights.get(p.name + ".weight", {p.rows, in}).slice(0, p.begin, p.end));
    if (bias) biases.push_back(weights.get(p.name + ".bias", {p.rows}).view({p.rows, 1}).slice(0, p.begin, p.end));
  }
  // The parts' common format (a GGUF file's quantized tensors, or --quantize); float if they differ.
  WeightFormat format = weights.format_of(parts[0].name + ".weight");
  for (const Part& p : parts)
    if (weights.format_of(p.name + ".weight") != format) format = WeightFormat::Float;
  weight_ = PackedWeight(rows.size() == 1 ? rows[0] : concat_rows(rows), format);
  if (bias) bias_ = concat_rows(biases).to(DType::F32).view({-1});
}

Tensor ColumnParallelLinear::forward(const Tensor& x) const {
  Tensor y = linear(x, weight_, bias_);
  return gathered_widths_.empty() ? y : group_.ops->all_gather_columns(y, gathered_widths_);
}

MergedColumnParallelLinear::MergedColumnParallelLinear(const WeightStore& weights,
                                                       const std::vector<std::string>& names, int64_t out_each,
                                                       int64_t in, TpGroup group) {
  auto [begin, end] = group.part(out_each);
  std::vector<Part> parts;
  for (const auto& name : names) parts.push_back({name, out_each, begin, end});
  load(weights, parts, in, group, false);
}

QKVParallelLinear::QKVParallelLinear(const WeightStore& weights, const std::string& prefix, const ModelConfig& c,
                                     TpGroup group) {
  const int64_t D = c.head_dim;
  auto [q_begin, q_end] = group.part(c.num_attention_heads);
  auto [kv_begin, kv_end] = kv_head_range(c.num_key_value_heads, group.size, group.rank);
  q_heads_ = q_end - q_begin, kv_heads_ = kv_end - kv_begin;
  load(weights,
       {{prefix + ".q_proj", c.q_size(), q_begin * D, q_end * D},
        {prefix + ".k_proj", c.kv_size(), kv_begin * D, kv_end * D},
        {prefix + ".v_proj", c.kv_size(), kv_begin * D, kv_end * D}},
       c.hidden_size, group, c.attention_bias);
}

RowParallelLinear::RowParallelLinear(const WeightStore& weights, const std::string& name, int64_t out, int64_t in,
                                     TpGroup group, bool reduce_results)
    : group_(group), reduce_results_(reduce_results) {
  auto [begin, end] = group.part(in);
  // A shard quantizes into the unsharded weight's blocks only when it starts on a block boundary;
  // otherwise it keeps float panels of the same (dequantized) values.
  const WeightFormat format =
      begin % PackedWeight::kQuantBlock == 0 ? weights.format_of(name + ".weight") : WeightFormat::Float;
  weight_ = PackedWeight(weights.get(name + ".weight", {out, in}).slice(1, begin, end), format);
}

Tensor RowParallelLinear::forward(const Tensor& x) const {
  Tensor y = linear(x, weight_);
  if (reduce_results_) group_.all_reduce_sum(y);
  return y;
}

}  // namespace troupe
