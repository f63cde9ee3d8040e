#include "model/parallel_layout.hpp"

#include <numeric>

#include "kernels/error.hpp"
#include "model/context_parallel.hpp"

namespace troupe {

std::vector<int64_t> stage_layer_counts(int64_t num_layers, int pp_size,
                                        const std::vector<int64_t>& explicit_partition) {
  if (pp_size < 1) fail("pipeline_parallel_size ({}) must be at least 1", pp_size);
  if (!explicit_partition.empty()) {
    if (int64_t(explicit_partition.size()) != pp_size)
      fail("pp partition has {} stages but pipeline_parallel_size is {}", explicit_partition.size(), pp_size);
    int64_t sum = 0;
    for (auto n : explicit_partition) {
      if (n < 1) fail("pp partition stage size {} must be at least 1 layer", n);
      if (__builtin_add_overflow(sum, n, &sum))
        fail("pp partition sums to more layers than int64 counts (the model has {})", num_layers);
    }
    if (sum != num_layers) fail("pp partition sums to {} layers but the model has {}", sum, num_layers);
    return explicit_partition;
  }
  if (pp_size > num_layers)
    fail("pipeline_parallel_size ({}) is larger than the number of layers ({})", pp_size, num_layers);
  return balanced_sizes(num_layers, pp_size);
}

std::pair<int64_t, int64_t> ParallelLayout::layer_range(int64_t num_layers) const {
  auto counts = stage_layer_counts(num_layers, pp_size, pp_partition);
  int64_t first = std::accumulate(counts.begin(), counts.begin() + pp_rank, int64_t(0));
  return {first, first + counts[size_t(pp_rank)]};
}

std::string ParallelLayout::describe() const {
  std::string s = ep_size > 1 ? fmt::format("tp {}/{} (ep {}), pp {}/{}", tp_rank, tp_size, ep_size, pp_rank, pp_size)
                              : fmt::format("tp {}/{}, pp {}/{}", tp_rank, tp_size, pp_rank, pp_size);
  if (cp_size > 1)
    s += fmt::format(", cp {} (ring {}/{}, ulysses {}/{})", cp_size, ring_rank, ring_degree, ulysses_rank,
                     ulysses_degree);
  return s;
}

std::pair<int, int> context_parallel_degrees(int cp, int ring, int ulysses) {
  if (ring > 0 && ulysses > 0) return {ring, ulysses};
  if (ring > 0) return {ring, std::max(1, cp / ring)};
  if (ulysses > 0) return {std::max(1, cp / ulysses), ulysses};
  return {cp, 1};
}

void validate_context_parallel(const ModelConfig& c, int tp, int cp, int ring_degree, int ulysses_degree) {
  if (cp < 1) fail("context_parallel_size (cp = {}) must be at least 1", cp);
  if (ring_degree < 1 || ulysses_degree < 1 || ring_degree * ulysses_degree != cp)
    fail("ring_degree ({}) x ulysses_degree ({}) must equal the context parallel size (cp = {})", ring_degree,
         ulysses_degree, cp);
  if (ulysses_degree == 1 || tp < 1 || c.num_attention_heads % tp) return;  // validate_layout names tp's problems
  const auto [kv_begin, kv_end] = kv_head_range(c.num_key_value_heads, tp, 0);
  try {
    ulysses_heads(c.num_attention_heads / tp, kv_end - kv_begin, ulysses_degree, 0);
  } catch (const Error& e) {
    fail("{} (num_attention_heads {}, num_key_value_heads {}, tensor_parallel_size {})", e.what(),
         c.num_attention_heads, c.num_key_value_heads, tp);
  }
}

void validate_layout(const ModelConfig& c, int tp, int pp, const std::vector<int64_t>& partition, int ep, int dp) {
  if (tp < 1) fail("tensor_parallel_size ({}) must be at least 1", tp);
  if (ep < 1) fail("expert_parallel_size ({}) must be at least 1", ep);
  // Expert checks first: they name the numbers the user chose the ep size for.
  if (ep > 1) {
    if (!c.is_moe())
      fail("expert_parallel_size ({}) needs a mixture-of-experts model, but {} is dense", ep, c.model_type);
    if (c.num_experts % ep) fail("num_experts ({}) is not divisible by expert_parallel_size ({})", c.num_experts, ep);
    if (dp > 1 && ep != tp && ep != tp * dp)
      fail(
          "expert_parallel_size ({}) must equal tensor_parallel_size ({}) or tp x data_parallel_size ({} x {} = {}): "
          "the experts are partitioned over the tp group or over every replica's tp group together",
          ep, tp, tp, dp, tp * dp);
    if (dp == 1 && ep != tp)
      fail(
          "expert_parallel_size ({}) must equal tensor_parallel_size ({}): the experts are partitioned over the tp "
          "group",
          ep, tp);
  }
  if (c.num_attention_heads % tp)
    fail("num_attention_heads ({}) is not divisible by tensor_parallel_size ({})", c.num_attention_heads, tp);
  if (c.num_key_value_heads >= tp ? c.num_key_value_heads % tp : tp % c.num_key_value_heads)
    fail("num_key_value_heads ({}) must divide tensor_parallel_size ({}) or be divisible by it", c.num_key_value_heads,
         tp);
  int64_t ffn = c.is_moe() ? c.moe_intermediate_size : c.intermediate_size;
  if (ffn < tp) fail("intermediate_size ({}) is smaller than tensor_parallel_size ({})", ffn, tp);
  if (c.vocab_size < tp) fail("vocab_size ({}) is smaller than tensor_parallel_size ({})", c.vocab_size, tp);
  stage_layer_counts(c.num_hidden_layers, pp, partition);
}

std::pair<int64_t, int64_t> balanced_range(int64_t total, int64_t parts, int64_t index) {
  int64_t base = total / parts, extra = total % parts;
  int64_t begin = index * base + std::min(index, extra);
  return {begin, begin + base + (index < extra ? 1 : 0)};
}

std::vector<int64_t> balanced_sizes(int64_t total, int64_t parts) {
  std::vector<int64_t> sizes;
  for (int64_t index = 0; index < parts; ++index) sizes.push_back(total / parts + (index < total % parts ? 1 : 0));
  return sizes;
}

std::pair<int64_t, int64_t> kv_head_range(int64_t kv_heads, int tp_size, int tp_rank) {
  if (kv_heads >= tp_size) {
    int64_t per = kv_heads / tp_size;
    return {tp_rank * per, (tp_rank + 1) * per};
  }
  int64_t replicas = tp_size / kv_heads;
  int64_t head = tp_rank / replicas;
  return {head, head + 1};
}

}  // namespace troupe
