#pragma once
// ModelExecutor: runs one forward step of a whole (possibly parallel) model and returns the
// logits of the requested rows. A single rank (LocalModelExecutor), a tensor x pipeline group of
// ranks, or a cluster behind the coordinator all look the same to the schedulers.
#include <cstdint>

#include "kernels/tensor.hpp"
#include "model/forward_batch.hpp"
#include "model/model_config.hpp"

namespace troupe {

class ModelExecutor {
 public:
  virtual ~ModelExecutor() = default;
  virtual const ModelConfig& config() const = 0;
  virtual int64_t num_kv_blocks() const = 0;
  virtual int64_t kv_block_size() const = 0;
  // Logits [batch.logit_rows.size(), vocab_size] f32.
  virtual Tensor execute(const ForwardBatch& batch) = 0;
};

}  // namespace troupe
