#pragma once
// Embedding lookup: rows of an [V, D] table (f32/bf16/f16) gathered into f32 [T, D].
#include <cstdint>
#include <vector>

#include "kernels/tensor.hpp"

namespace troupe {

// embedding: ids outside [0, V) are a troupe::Error naming the id and the vocabulary size.
// embedding_shard (a vocab-parallel shard holding ids [vocab_offset, vocab_offset + V)): other ids
// give zero rows, so the sum over the shards is the full lookup.
Tensor embedding(const Tensor& table, const std::vector<int32_t>& ids);
Tensor embedding_shard(const Tensor& table, const std::vector<int32_t>& ids, int64_t vocab_offset);

}  // namespace troupe
