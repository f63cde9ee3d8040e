#pragma once
// Partial attention: causal attention of a batch's queries over a chosen subset of each sequence's
// cached keys, returned with the log-sum-exp (LSE) of the scores, and the exact merge of two such
// parts. Context parallelism's ring attention is built from these: a rank attends to one chunk of
// keys at a time as the chunks come round the ring, and merges the parts in f32 (FlashAttention's
// online-softmax rule), so the result equals attention over the union of the chunks up to rounding.
//
// Keys are read from a paged cache (paged_attention.hpp's layout) through each sequence's block
// table; the caller has written them there. Pure functions of their arguments; no state.
#include <cstdint>
#include <vector>

#include "kernels/paged_attention.hpp"
#include "kernels/tensor.hpp"

namespace troupe {

struct PartialAttention {
  Tensor out;  // [T, q_heads * head_dim] f32: softmax-weighted values over this part's keys (0 where none)
  Tensor lse;  // [T, q_heads] f32: log of the sum of exp(score) over this part's keys (-inf where none)
};

// key_positions[s]: the positions (ascending) of sequence s whose keys take part; token t attends to
// those <= meta.positions[t], through its sequence's block table. Throws troupe::Error on a shape or
// layout mismatch (validate_attention_metadata) or a position outside the sequence's blocks.
PartialAttention partial_paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                         const AttentionMetadata& meta,
                                         const std::vector<std::vector<int32_t>>& key_positions, int64_t q_heads,
                                         float scale);

// acc becomes the attention over acc's keys and part's keys together. Shapes must match.
void merge_partial_attention(PartialAttention& acc, const PartialAttention& part);

}  // namespace troupe
