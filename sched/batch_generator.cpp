#include "sched/batch_generator.hpp"

#include <map>

#include "kernels/error.hpp"
#include "sched/scheduler.hpp"

namespace troupe {

BatchGenerator::BatchGenerator(ModelExecutor& executor, int64_t max_num_seqs, int64_t max_num_batched_tokens)
    : executor_(executor), max_num_seqs_(max_num_seqs), max_num_batched_tokens_(max_num_batched_tokens) {}

std::vector<GenerationResult> BatchGenerator::run(const std::vector<GenerationRequest>& requests,
                                                  const std::function<void(size_t, int32_t)>& on_token) {
  Scheduler scheduler(executor_.config(), executor_.num_kv_blocks(), executor_.kv_block_size(),
                      SchedulerConfig{max_num_seqs_, max_num_batched_tokens_, 1});
  for (size_t i = 0; i < requests.size(); ++i) scheduler.add(int64_t(i), requests[i]);
  std::vector<GenerationResult> results(requests.size());
  while (scheduler.has_unfinished()) {
    auto mb = scheduler.schedule();
    if (!mb) fail("scheduler made no progress with {} kv blocks", executor_.num_kv_blocks());
    Tensor logits = executor_.execute(mb->batch);
    std::vector<int32_t> sampled;
    for (size_t r = 0; r < mb->sampled_sequences.size(); ++r)
      sampled.push_back(Sampler(mb->sampling[r])
                            .sample(logits.data<float>() + int64_t(r) * logits.size(1), logits.size(1),
                                    mb->batch.attention.positions[size_t(mb->batch.logit_rows[r])]));
    for (const auto& e : scheduler.complete(*mb, sampled)) {
      auto& result = results[size_t(e.sequence_id)];
      if (e.token >= 0) {
        result.ids.push_back(e.token);
        if (on_token) on_token(size_t(e.sequence_id), e.token);
      }
      if (e.finished) result.finish_reason = e.finish_reason;
    }
  }
  preemptions_ = scheduler.num_preemptions();
  return results;
}

}  // namespace troupe
