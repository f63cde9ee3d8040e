#pragma once
// Context parallelism (cp = ring_degree x ulysses_degree ranks share one step's tokens), the scheme of
// the seeds' ContextParallelConfig / vLLM-Omni's sequence-parallel groups, applied to LLM prefill:
//
//   * ContextParallelPlan splits a batch's tokens over the cp ranks. Each sequence's tokens are cut
//     into 2 x ring_degree pieces and ring chunk b takes pieces b and 2r-1-b (zig-zag: under the causal
//     mask every ring rank then does the same attention work); a ring chunk's tokens are split evenly
//     over its ulysses ranks. Every rank runs embedding, norms, projections and MLP on its own tokens
//     only; stage activations between pipeline stages are those tokens' rows.
//   * Ulysses (ulysses_degree u): an all_to_all turns q/k/v from "my tokens, all heads" into "my ring
//     chunk's tokens, 1/u of the heads" before attention, and back after. KV heads fewer than the
//     ulysses degree are replicated (each rank takes the kv head its query heads read).
//   * Ring (ring_degree r): each rank keeps its chunk's queries and passes its chunk's keys/values to
//     the next ring rank r-1 times (over the ring group's communicator, on a helper thread, overlapped
//     with the attention over the chunk in hand), merging the partial results by log-sum-exp in f32.
//
// KV cache (the choice, see docs/context-parallelism.md): every ring rank stores every chunk it sees,
// so after a step each rank's cache holds the whole sequence for its share of the heads — replicated
// over the ring, split by heads over ulysses (as tp splits them). Decode then needs no gather of
// partial caches: a decode token goes through the same path (one rank holds it; the ring passes its
// one key row). The cost is r copies of the cache; the gain is that decode keeps its cp ranks.
//
// Groups are borrowed TensorParallelOps (ring and ulysses communicators from RankGenerator's
// split_sequence_parallel); a plan is built per step and lives for that step only.
#include <cstdint>
#include <vector>

#include "model/forward_batch.hpp"
#include "model/tensor_parallel_ops.hpp"

namespace troupe {

struct ContextParallelGroups {
  TensorParallelOps* ring = nullptr;     // null when ring_degree == 1
  TensorParallelOps* ulysses = nullptr;  // null when ulysses_degree == 1
  int ring_degree() const { return ring ? ring->size() : 1; }
  int ulysses_degree() const { return ulysses ? ulysses->size() : 1; }
  int ring_rank() const { return ring ? ring->rank() : 0; }
  int ulysses_rank() const { return ulysses ? ulysses->rank() : 0; }
  int size() const { return ring_degree() * ulysses_degree(); }
};

// The query and kv heads (of one tp rank's q_heads / kv_heads) that ulysses member `member` attends
// with. Throws troupe::Error naming the numbers when the heads do not divide over the degree.
struct UlyssesHeads {
  int64_t q_begin = 0, q_end = 0, kv_begin = 0, kv_end = 0;
};
UlyssesHeads ulysses_heads(int64_t q_heads, int64_t kv_heads, int ulysses_degree, int member);

class ContextParallelPlan {
 public:
  ContextParallelPlan(const ForwardBatch& batch, const ContextParallelGroups& groups);

  const ForwardBatch& batch() const { return *batch_; }
  const ContextParallelGroups& groups() const { return groups_; }
  // Batch indices (ascending) held by the rank at (ring, ulysses), by this rank, by a ring chunk.
  const std::vector<int64_t>& tokens(int ring, int ulysses) const;
  const std::vector<int64_t>& local_tokens() const { return tokens(groups_.ring_rank(), groups_.ulysses_rank()); }
  const std::vector<int64_t>& ring_chunk(int ring) const { return chunks_[size_t(ring)]; }
  // Values of the batch at this rank's tokens.
  std::vector<int32_t> local_token_ids() const;
  std::vector<int32_t> local_positions() const;
  // Computed once per step for every layer: ring chunk c's attention metadata (the batch's, restricted
  // to its tokens), its key positions per sequence (ascending), and this rank's keys of ring step 0 —
  // its own chunk's positions and, per sequence, the context cached by earlier steps.
  const AttentionMetadata& chunk_metadata(int ring) const { return chunk_metadata_[size_t(ring)]; }
  const std::vector<std::vector<int32_t>>& chunk_keys(int ring) const { return chunk_keys_[size_t(ring)]; }
  const std::vector<std::vector<int32_t>>& first_step_keys() const { return first_step_keys_; }

  // The last stage: rows of this rank's hidden states holding the batch's logit rows (in logit-row
  // order), and the gather that gives every rank all logit rows in batch.logit_rows order.
  std::vector<int64_t> local_logit_rows() const;
  Tensor gather_logit_rows(const Tensor& local_rows) const;

 private:
  const ForwardBatch* batch_;
  ContextParallelGroups groups_;
  std::vector<std::vector<int64_t>> owned_;                    // [ring * ulysses_degree + ulysses]
  std::vector<std::vector<int64_t>> chunks_;                   // [ring]
  std::vector<AttentionMetadata> chunk_metadata_;              // [ring]
  std::vector<std::vector<std::vector<int32_t>>> chunk_keys_;  // [ring][sequence]
  std::vector<std::vector<int32_t>> first_step_keys_;          // [sequence]
};

// Attention of this rank's tokens under context parallelism. q [n, q_heads * head_dim] and k, v
// [n, kv_heads * head_dim] are this rank's tokens (plan.local_tokens()) with all of this tp rank's
// heads, after rope. Writes every chunk's keys/values of this rank's ulysses head share into the
// caches (which hold ulysses_heads(...).kv heads) and returns [n, q_heads * head_dim].
Tensor context_parallel_attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t q_heads, int64_t kv_heads,
                                  int64_t head_dim, float scale, const ContextParallelPlan& plan, Tensor& k_cache,
                                  Tensor& v_cache);

}  // namespace troupe
