#pragma once
// Causal attention with grouped-query heads over a paged KV cache (vLLM's layout): each layer's
// cache is a pool of blocks [num_blocks, block_size, kv_heads, head_dim]; a sequence owns a block
// table mapping its logical block i to a physical block. Token t of a batch attends to the cached
// positions [0, positions[t]] of its own sequence.
#include <cstdint>
#include <vector>

#include "kernels/tensor.hpp"

namespace troupe {

struct AttentionMetadata {
  int64_t block_size = 16;
  std::vector<int32_t> positions;                  // per token
  std::vector<int32_t> sequence_of_token;          // per token: index into block_tables
  std::vector<std::vector<int32_t>> block_tables;  // per sequence (a copy: batches outlive scheduling)
};

// Throws troupe::Error unless `meta` describes `num_tokens` tokens laid out in a cache of
// `num_blocks` blocks (num_blocks < 0: any number) of `block_size` slots: one position (>= 0)
// and one sequence index (into block_tables) per token, each token's position inside its
// sequence's table, every table entry a block of the cache. write_kv_cache and paged_attention
// check it against their cache; a micro-batch from another process is checked with it on arrival.
void validate_attention_metadata(const AttentionMetadata& meta, int64_t num_tokens, int64_t num_blocks,
                                 int64_t block_size);

// The cache slot (block * block_size + offset) of token t.
int64_t kv_slot(const AttentionMetadata& meta, int64_t token);

// Stores k, v ([T, kv_heads * head_dim] f32) into the caches at each token's slot.
void write_kv_cache(const Tensor& k, const Tensor& v, Tensor& k_cache, Tensor& v_cache, const AttentionMetadata& meta);

// q: [T, q_heads * head_dim] f32; returns [T, q_heads * head_dim] f32.
Tensor paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const AttentionMetadata& meta,
                       int64_t q_heads, float scale);

}  // namespace troupe
