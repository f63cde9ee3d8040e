#include "sched/sequence.hpp"

#include <iterator>

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

const char* to_string(FinishReason reason) {
  constexpr const char* names[] = {"", "stop", "length", "abort", "error"};
  // A reason off the wire may hold any byte (a client prints what the engine sent).
  return size_t(reason) < std::size(names) ? names[size_t(reason)] : "unknown";
}

}  // namespace troupe
