#include "sched/batch_generator.hpp"

#include <algorithm>
#include <deque>

#include "kernels/error.hpp"

namespace troupe {

void validate_request(const GenerationRequest& r, const ModelConfig& c) {
  if (r.prompt_ids.empty()) fail("the prompt is empty (need at least one token)");
  for (int32_t id : r.prompt_ids)
    if (id < 0 || id >= c.vocab_size) fail("prompt token id {} is out of range for vocab_size {}", id, c.vocab_size);
  if (int64_t(r.prompt_ids.size()) >= c.max_position_embeddings)
    fail("prompt of {} tokens does not fit the context of {} tokens (max_position_embeddings) with room to generate",
         r.prompt_ids.size(), c.max_position_embeddings);
  if (r.max_tokens < 1) fail("max_tokens ({}) must be at least 1", r.max_tokens);
  r.sampling.validate();
}

BatchGenerator::BatchGenerator(ModelExecutor& executor) : executor_(executor) {}

namespace {
struct Running {
  size_t index;
  std::vector<int32_t> tokens;  // prompt + generated
  int64_t computed = 0;         // tokens whose kv is cached
  int64_t limit;                // total tokens allowed (prompt + max_tokens, capped by the context)
  Sampler sampler;
};
}  // namespace

std::vector<GenerationResult> BatchGenerator::run(const std::vector<GenerationRequest>& requests,
                                                  const std::function<void(size_t, int32_t)>& on_token) {
  const ModelConfig& config = executor_.config();
  for (const auto& r : requests) validate_request(r, config);
  KvBlockManager blocks(executor_.num_kv_blocks(), executor_.kv_block_size());
  std::vector<GenerationResult> results(requests.size());
  std::deque<size_t> waiting;
  for (size_t i = 0; i < requests.size(); ++i) waiting.push_back(i);
  std::vector<Running> running;

  while (!waiting.empty() || !running.empty()) {
    // Admit waiting requests whose whole lifetime fits in the free blocks (no preemption here).
    while (!waiting.empty()) {
      const auto& r = requests[waiting.front()];
      int64_t limit = std::min<int64_t>(int64_t(r.prompt_ids.size()) + r.max_tokens, config.max_position_embeddings);
      if (!blocks.reserve(int64_t(waiting.front()), limit)) {
        if (running.empty())
          fail("request {} needs {} kv blocks for {} tokens but the cache has only {}", waiting.front(),
               blocks.blocks_for_tokens(limit), limit, blocks.num_blocks());
        break;
      }
      running.push_back(Running{waiting.front(), r.prompt_ids, 0, limit, Sampler(r.sampling)});
      waiting.pop_front();
    }
    ForwardBatch batch;
    for (size_t s = 0; s < running.size(); ++s) {
      Running& seq = running[s];
      batch.attention.block_tables.push_back(&blocks.block_table(int64_t(seq.index)));
      for (int64_t p = seq.computed; p < int64_t(seq.tokens.size()); ++p) {
        batch.token_ids.push_back(seq.tokens[size_t(p)]);
        batch.attention.positions.push_back(int32_t(p));
        batch.attention.sequence_of_token.push_back(int32_t(s));
      }
      batch.logit_rows.push_back(batch.num_tokens() - 1);
    }
    batch.attention.block_size = executor_.kv_block_size();
    Tensor logits = executor_.execute(batch);
    const int64_t vocab = logits.size(1);
    std::vector<Running> still;
    for (size_t s = 0; s < running.size(); ++s) {
      Running& seq = running[s];
      const auto& req = requests[seq.index];
      seq.computed = int64_t(seq.tokens.size());
      int32_t token = seq.sampler.sample(logits.data<float>() + int64_t(s) * vocab, vocab);
      seq.tokens.push_back(token);
      auto& result = results[seq.index];
      result.ids.push_back(token);
      if (on_token) on_token(seq.index, token);
      bool eos = !req.ignore_eos && std::count(config.eos_token_ids.begin(), config.eos_token_ids.end(), token);
      bool stop = eos || std::count(req.stop_token_ids.begin(), req.stop_token_ids.end(), token);
      if (stop || int64_t(seq.tokens.size()) >= seq.limit) {
        result.finish_reason = stop ? "stop" : "length";
        blocks.release(int64_t(seq.index));
      } else {
        still.push_back(std::move(seq));
      }
    }
    running = std::move(still);
  }
  return results;
}

}  // namespace troupe
