#pragma once
// BatchGenerator: runs a set of generation requests to completion on a ModelExecutor through the
// continuous-batching Scheduler (one micro-batch in flight), sampling on this thread.
#include <functional>
#include <string>
#include <vector>

#include "sched/model_executor.hpp"
#include "sched/sequence.hpp"

namespace troupe {

struct GenerationResult {
  std::vector<int32_t> ids;                         // generated ids (never the prompt)
  FinishReason finish_reason = FinishReason::None;  // Stop (eos / stop id) or Length (max_tokens or context)
};

class BatchGenerator {
 public:
  explicit BatchGenerator(ModelExecutor& executor);
  BatchGenerator(ModelExecutor& executor, int64_t max_num_seqs, int64_t max_num_batched_tokens);
  // on_token(request index, token id) is called as each token is sampled.
  std::vector<GenerationResult> run(const std::vector<GenerationRequest>& requests,
                                    const std::function<void(size_t, int32_t)>& on_token = {});

 private:
  ModelExecutor& executor_;
  int64_t max_num_seqs_ = 256, max_num_batched_tokens_ = 4096;
  int64_t preemptions_ = 0;

 public:
  int64_t preemptions() const { return preemptions_; }  // of the last run
};

}  // namespace troupe
