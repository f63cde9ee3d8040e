#pragma once
// BatchGenerator: runs a set of generation requests to completion on a ModelExecutor through the
// continuous-batching Scheduler (one micro-batch in flight), sampling on this thread.
#include <functional>
#include <string>
#include <vector>

#include "kernels/sampling.hpp"
#include "sched/kv_block_manager.hpp"
#include "sched/model_executor.hpp"

namespace troupe {

struct GenerationRequest {
  std::vector<int32_t> prompt_ids;
  int64_t max_tokens = 16;
  SamplingParams sampling;
  std::vector<int32_t> stop_token_ids;  // in addition to the model's eos ids
  bool ignore_eos = false;
};

struct GenerationResult {
  std::vector<int32_t> ids;   // generated ids (never the prompt)
  std::string finish_reason;  // "stop" (eos / stop id), "length" (max_tokens or context)
};

// Throws troupe::Error naming the value and the expectation (empty prompt, ids outside the
// vocabulary, prompt not shorter than the context, max_tokens < 1, bad sampling parameters).
void validate_request(const GenerationRequest& request, const ModelConfig& config);

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
