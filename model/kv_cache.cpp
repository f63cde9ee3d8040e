#include "model/kv_cache.hpp"

#include <algorithm>

#include "kernels/error.hpp"

namespace troupe {

KvCache::KvCache(int64_t num_layers, int64_t num_blocks, int64_t block_size, int64_t kv_heads, int64_t head_dim)
    : num_blocks_(num_blocks), block_size_(block_size) {
  if (num_blocks < 1 || block_size < 1)
    fail("kv cache needs at least one block of at least one slot (got {} x {})", num_blocks, block_size);
  if (num_blocks > kMaxKvBlocks || block_size > kMaxKvBlockSize)
    fail("kv cache of {} blocks of {} slots: at most {} blocks of at most {} slots", num_blocks, block_size,
         kMaxKvBlocks, kMaxKvBlockSize);
  for (int64_t l = 0; l < num_layers; ++l) {
    keys_.push_back(Tensor::zeros({num_blocks, block_size, kv_heads, head_dim}, DType::F32));
    values_.push_back(Tensor::zeros({num_blocks, block_size, kv_heads, head_dim}, DType::F32));
  }
}

int64_t KvCache::blocks_for_budget(int64_t budget_bytes, int64_t num_layers, int64_t block_size, int64_t kv_heads,
                                   int64_t head_dim) {
  int64_t per_block = 2 * 4;  // keys and values, f32
  for (int64_t factor : {num_layers, block_size, kv_heads, head_dim})
    if (factor < 1 || __builtin_mul_overflow(per_block, factor, &per_block)) return 0;
  return budget_bytes > 0 ? std::min(budget_bytes / per_block, kMaxKvBlocks) : 0;
}

size_t KvCache::bytes() const {
  size_t b = 0;
  for (const auto& t : keys_) b += 2 * t.nbytes();
  return b;
}

}  // namespace troupe
