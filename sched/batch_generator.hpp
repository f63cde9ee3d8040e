#pragma once
// BatchGenerator: runs a set of generation requests to completion on a ModelExecutor through the
// continuous-batching Scheduler (one micro-batch in flight), sampling on this thread.
#include <functional>
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
  explicit BatchGenerator(ModelExecutor& executor, int64_t max_num_seqs = 256, int64_t max_num_batched_tokens = 4096);
  // on_token(request index, token id) is called as each token is sampled.
  std::vector<GenerationResult> run(const std::vector<GenerationRequest>& requests,
                                    const std::function<void(size_t, int32_t)>& on_token = {});
  int64_t preemptions() const { return preemptions_; }  // of the last run

 private:
  ModelExecutor& executor_;
  int64_t max_num_seqs_, max_num_batched_tokens_;
  int64_t preemptions_ = 0;
};

}  // namespace troupe
