#pragma once
// KvCache: the paged key/value pools of the layers one rank holds, each
// [num_blocks, block_size, kv_heads_on_this_rank, head_dim] f32. Blocks are handed out by
// sched/KvBlockManager; this class only owns the memory.
#include <cstdint>
#include <vector>

#include "kernels/tensor.hpp"

namespace troupe {

// Bounds on a paged KV cache's layout, wherever one is described (node config, KvCacheOptions, a
// cache, the scheduler's block manager): slots per block (vLLM uses 8 to 128), and blocks per
// cache (block ids are int32, and the coordinator keeps a free list of every replica's blocks).
inline constexpr int64_t kMaxKvBlockSize = 1024;
inline constexpr int64_t kMaxKvBlocks = int64_t(1) << 24;

class KvCache {
 public:
  KvCache() = default;
  KvCache(int64_t num_layers, int64_t num_blocks, int64_t block_size, int64_t kv_heads, int64_t head_dim);

  // Blocks that fit in `budget_bytes` for this shape, at most kMaxKvBlocks (0 when one does not fit,
  // or when the shape is not positive or a block's bytes overflow).
  static int64_t blocks_for_budget(int64_t budget_bytes, int64_t num_layers, int64_t block_size, int64_t kv_heads,
                                   int64_t head_dim);

  int64_t num_blocks() const { return num_blocks_; }
  int64_t block_size() const { return block_size_; }
  Tensor& keys(int64_t local_layer) { return keys_[size_t(local_layer)]; }
  Tensor& values(int64_t local_layer) { return values_[size_t(local_layer)]; }
  size_t bytes() const;

 private:
  int64_t num_blocks_ = 0, block_size_ = 16;
  std::vector<Tensor> keys_, values_;
};

}  // namespace troupe
