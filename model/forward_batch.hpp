#pragma once
// ForwardBatch: one model step over a flattened batch of tokens from several sequences (prefill
// chunks and decode tokens mixed), as vLLM lays it out. StageActivations: what one pipeline stage
// hands the next (vLLM's IntermediateTensors {hidden_states, residual}).
#include <cstdint>
#include <vector>

#include "kernels/paged_attention.hpp"
#include "kernels/tensor.hpp"

namespace troupe {

struct ForwardBatch {
  std::vector<int32_t> token_ids;   // [T]
  AttentionMetadata attention;      // positions, sequence of each token, block tables
  std::vector<int64_t> logit_rows;  // tokens whose next-token logits are wanted (usually each sequence's last)
  int64_t num_tokens() const { return int64_t(token_ids.size()); }
};

struct StageActivations {
  Tensor hidden_states;  // [T, hidden] f32
  Tensor residual;       // [T, hidden] f32
};

}  // namespace troupe
