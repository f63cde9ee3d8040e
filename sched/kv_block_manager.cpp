#include "sched/kv_block_manager.hpp"

#include "kernels/error.hpp"
#include "model/kv_cache.hpp"

namespace troupe {

KvBlockManager::KvBlockManager(int64_t num_blocks, int64_t block_size)
    : num_blocks_(num_blocks), block_size_(block_size) {
  if (num_blocks < 1 || block_size < 1)
    fail("kv block manager needs blocks (got {} blocks of {} slots)", num_blocks, block_size);
  if (num_blocks > kMaxKvBlocks || block_size > kMaxKvBlockSize)  // block ids are int32; the free list is memory
    fail("kv block manager of {} blocks of {} slots: at most {} blocks of at most {} slots", num_blocks, block_size,
         kMaxKvBlocks, kMaxKvBlockSize);
  for (int64_t b = num_blocks - 1; b >= 0; --b) free_.push_back(int32_t(b));  // hand out low blocks first
}

bool KvBlockManager::reserve(int64_t sequence_id, int64_t tokens) {
  auto it = tables_.find(sequence_id);
  int64_t have = it == tables_.end() ? 0 : int64_t(it->second.size());
  if (blocks_for_tokens(tokens) - have > num_free_blocks()) return false;
  auto& table = tables_[sequence_id];
  while (int64_t(table.size()) < blocks_for_tokens(tokens)) {
    table.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void KvBlockManager::release(int64_t sequence_id) {
  auto it = tables_.find(sequence_id);
  if (it == tables_.end()) return;
  for (auto b = it->second.rbegin(); b != it->second.rend(); ++b) free_.push_back(*b);
  tables_.erase(it);
}

const std::vector<int32_t>& KvBlockManager::block_table(int64_t sequence_id) const {
  auto it = tables_.find(sequence_id);
  if (it == tables_.end()) fail("sequence {} holds no kv blocks", sequence_id);
  return it->second;
}

}  // namespace troupe
