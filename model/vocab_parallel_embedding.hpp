#pragma once
// The vocabulary-parallel ends of the model, named as in vLLM's vocab_parallel_embedding.py; the
// vocabulary is split over the tp group in balanced_range parts (no padding).
//  - VocabParallelEmbedding holds its part's rows of the [vocab, hidden] table (a private copy; at
//    size 1 the whole table, a view that keeps the mapped checkpoint alive). A lookup gives the rows
//    of the ids it holds, zeros for the others, and all-reduces: every rank gets every row.
//  - ParallelLMHead is a ColumnParallelLinear over the vocabulary (this rank's rows of lm_head, or of
//    the embedding table when tied) that all-gathers the logits.
// Lifetime as in parallel_linear.hpp: the WeightStore is read while constructing, TpGroup::ops is
// borrowed and must outlive every forward().
#include <string>
#include <vector>

#include "model/parallel_linear.hpp"

namespace troupe {

class VocabParallelEmbedding {
 public:
  VocabParallelEmbedding() = default;
  VocabParallelEmbedding(const WeightStore& weights, const std::string& name, int64_t vocab, int64_t hidden,
                         TpGroup group);
  // ids -> [ids.size(), hidden] f32; an id outside [0, vocab) is a troupe::Error.
  Tensor forward(const std::vector<int32_t>& ids) const;
  size_t weight_bytes() const { return table_.defined() ? table_.nbytes() : 0; }

 private:
  TpGroup group_;
  Tensor table_;  // vocabulary rows [vocab_begin_, vocab_begin_ + table_.size(0))
  int64_t vocab_ = 0, vocab_begin_ = 0;
};

class ParallelLMHead : public ColumnParallelLinear {
 public:
  ParallelLMHead() = default;
  // forward: [T, hidden] -> logits [T, vocab] on every rank.
  ParallelLMHead(const WeightStore& weights, const std::string& name, int64_t vocab, int64_t hidden, TpGroup group)
      : ColumnParallelLinear(weights, name, vocab, hidden, group, /*gather_output=*/true) {}
};

}  // namespace troupe
