#pragma once
// ParallelLayout: where one rank sits in a tensor x pipeline split of a model, and the checks that
// a split is admissible (run before any weight is loaded).
#include <cstdint>
#include <string>
#include <vector>

#include "model/model_config.hpp"

namespace troupe {

struct ParallelLayout {
  int tp_rank = 0, tp_size = 1;
  int pp_rank = 0, pp_size = 1;
  // Expert parallelism (MoE): 1, tp_size (experts over the tp group) or tp_size x dp ("wide": experts
  // over every replica's tp group together, attention data-parallel); ep_rank is this rank's place
  // in the expert group (tp_rank unless wide).
  int ep_size = 1;
  std::vector<int64_t> pp_partition;  // layers per stage; empty = even
  // Routed experts every expert-parallel rank holds and runs locally (hot experts), not dispatched.
  std::vector<int64_t> replicated_experts;
  // Context parallelism (model/context_parallel.hpp): cp_size = ring_degree x ulysses_degree ranks
  // share each step's tokens; this rank's place in its ring and ulysses groups.
  int cp_size = 1, ring_degree = 1, ulysses_degree = 1;
  int ring_rank = 0, ulysses_rank = 0;
  int ep_rank = 0;
  bool wide_expert_parallel() const { return ep_size > tp_size; }
  bool first_stage() const { return pp_rank == 0; }
  bool last_stage() const { return pp_rank == pp_size - 1; }
  // The one rank whose logits are sampled and reported: the last stage's tp rank 0, cp rank 0 (the
  // others of its tp and cp groups compute the same logits).
  bool reports_logits() const { return last_stage() && tp_rank == 0 && ring_rank == 0 && ulysses_rank == 0; }
  // [first, end) layers of this rank's stage.
  std::pair<int64_t, int64_t> layer_range(int64_t num_layers) const;
  std::string describe() const;  // "tp 1/2, pp 0/2, layers [0, 2)"
};

// Layers per stage: the explicit partition (validated) or an even split with the remainder on the
// first stages.
std::vector<int64_t> stage_layer_counts(int64_t num_layers, int pp_size,
                                        const std::vector<int64_t>& explicit_partition);

// Throws troupe::Error naming the numbers when tp/pp/partition/ep do not fit the model (ep must be
// 1, tp or tp x dp, on a mixture-of-experts model whose experts it divides).
void validate_layout(const ModelConfig& config, int tp_size, int pp_size, const std::vector<int64_t>& partition,
                     int ep_size = 1, int dp_size = 1);

// [begin, end) of part `index` when `total` is split into `parts` as evenly as possible
// (the first total % parts parts get one more).
std::pair<int64_t, int64_t> balanced_range(int64_t total, int64_t parts, int64_t index);
// The sizes of all `parts` balanced ranges of `total`, in order.
std::vector<int64_t> balanced_sizes(int64_t total, int64_t parts);

// The (ring_degree, ulysses_degree) of a cp size, either degree 0 meaning "not given": neither given is
// ring attention only (cp, 1); one given, the other is cp divided by it (rounded down: a product that
// does not make cp is named by validate_context_parallel).
std::pair<int, int> context_parallel_degrees(int cp, int ring_degree, int ulysses_degree);

// Throws troupe::Error naming the values, before any weight is loaded, unless ring_degree x
// ulysses_degree == cp and the heads a tp rank holds divide over the ulysses degree.
void validate_context_parallel(const ModelConfig& config, int tp_size, int cp, int ring_degree, int ulysses_degree);

// The kv heads a tp rank holds: partitioned when kv_heads >= tp, else one replicated head.
std::pair<int64_t, int64_t> kv_head_range(int64_t kv_heads, int tp_size, int tp_rank);

}  // namespace troupe
