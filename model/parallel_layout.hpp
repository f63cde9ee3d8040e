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
  int ep_size = 1;                    // expert parallelism over the tp group (MoE): 1 or tp_size
  std::vector<int64_t> pp_partition;  // layers per stage; empty = even
  // Routed experts every expert-parallel rank holds and runs locally (hot experts), not dispatched.
  std::vector<int64_t> replicated_experts;
  bool first_stage() const { return pp_rank == 0; }
  bool last_stage() const { return pp_rank == pp_size - 1; }
  // [first, end) layers of this rank's stage.
  std::pair<int64_t, int64_t> layer_range(int64_t num_layers) const;
  std::string describe() const;  // "tp 1/2, pp 0/2, layers [0, 2)"
};

// Layers per stage: the explicit partition (validated) or an even split with the remainder on the
// first stages.
std::vector<int64_t> stage_layer_counts(int64_t num_layers, int pp_size,
                                        const std::vector<int64_t>& explicit_partition);

// Throws troupe::Error naming the numbers when tp/pp/partition/ep do not fit the model (ep must be
// 1 or tp, on a mixture-of-experts model whose experts it divides).
void validate_layout(const ModelConfig& config, int tp_size, int pp_size, const std::vector<int64_t>& partition,
                     int ep_size = 1);

// [begin, end) of part `index` when `total` is split into `parts` as evenly as possible
// (the first total % parts parts get one more).
std::pair<int64_t, int64_t> balanced_range(int64_t total, int64_t parts, int64_t index);
// The sizes of all `parts` balanced ranges of `total`, in order.
std::vector<int64_t> balanced_sizes(int64_t total, int64_t parts);

// The kv heads a tp rank holds: partitioned when kv_heads >= tp, else one replicated head.
std::pair<int64_t, int64_t> kv_head_range(int64_t kv_heads, int tp_size, int tp_rank);

}  // namespace troupe
