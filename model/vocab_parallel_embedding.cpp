#include "model/vocab_parallel_embedding.hpp"

#include "kernels/embedding.hpp"
#include "kernels/error.hpp"

namespace troupe {

VocabParallelEmbedding::VocabParallelEmbedding(const WeightStore& weights, const std::string& name, int64_t vocab,
                                               int64_t hidden, TpGroup group)
    : group_(group), vocab_(vocab) {
  Tensor table = weights.get(name + ".weight", {vocab, hidden});
  auto [begin, end] = group.part(vocab);
  vocab_begin_ = begin;
  table_ = group.size == 1 ? table : table.slice(0, begin, end).clone();
}

Tensor VocabParallelEmbedding::forward(const std::vector<int32_t>& ids) const {
  for (int32_t id : ids)
    if (id < 0 || id >= vocab_) fail("token id {} is out of range for vocab_size {}", id, vocab_);
  Tensor rows = embedding_shard(table_, ids, vocab_begin_);  // zero rows for ids another rank holds
  group_.all_reduce_sum(rows);
  return rows;
}

}  // namespace troupe
