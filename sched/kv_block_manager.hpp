#pragma once
// KvBlockManager: hands out the paged KV cache's fixed-size blocks to sequences (a free list plus
// one block table per sequence), as vLLM's block manager does without prefix sharing.
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace troupe {

class KvBlockManager {
 public:
  KvBlockManager(int64_t num_blocks, int64_t block_size);

  int64_t block_size() const { return block_size_; }
  int64_t num_free_blocks() const { return int64_t(free_.size()); }
  int64_t num_blocks() const { return num_blocks_; }
  int64_t blocks_for_tokens(int64_t tokens) const { return (tokens + block_size_ - 1) / block_size_; }

  // Grows the sequence's table to hold `tokens` slots; false (and no change) when blocks run out.
  bool reserve(int64_t sequence_id, int64_t tokens);
  void release(int64_t sequence_id);
  const std::vector<int32_t>& block_table(int64_t sequence_id) const;

 private:
  int64_t num_blocks_, block_size_;
  std::vector<int32_t> free_;
  std::unordered_map<int64_t, std::vector<int32_t>> tables_;
};

}  // namespace troupe
