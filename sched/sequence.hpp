#pragma once
// GenerationRequest: what a user asks for. Sequence: one request as the scheduler tracks it — its
// tokens (prompt + generated), how many of them have KV computed, and where it is in its life.
// FinishReason: why a request ended (a string only on output: to_string).
#include <cstdint>
#include <vector>

#include "kernels/sampling.hpp"
#include "model/model_config.hpp"

namespace troupe {

struct GenerationRequest {
  std::vector<int32_t> prompt_ids;
  int64_t max_tokens = 16;
  SamplingParams sampling;
  std::vector<int32_t> stop_token_ids;  // in addition to the model's eos ids
  bool ignore_eos = false;
};

// Throws troupe::Error naming the value and the expectation (empty prompt, ids outside the
// vocabulary, prompt not shorter than the context, max_tokens < 1, bad sampling parameters).
void validate_request(const GenerationRequest& request, const ModelConfig& config);

// Stop: an eos / stop id / stop string; Length: max_tokens or the context; Abort: cancelled;
// Error: the request failed (its event carries the message).
enum class FinishReason : uint8_t { None, Stop, Length, Abort, Error };
const char* to_string(FinishReason reason);  // "stop", "length", "abort", "error" ("" for None, else "unknown")

enum class SequenceStatus { Waiting, Running, Finished };

struct Sequence {
  int64_t id = 0;
  GenerationRequest request;
  std::vector<int32_t> tokens;  // prompt + generated
  size_t prompt_len = 0;
  int64_t num_computed = 0;  // leading tokens whose KV is in the cache
  int64_t arrival = 0;       // admission order (preemption takes the newest first)
  SequenceStatus status = SequenceStatus::Waiting;
  bool in_flight = false;  // part of a micro-batch not yet completed
  int64_t preemptions = 0;
  int64_t token_limit = 0;  // prompt + max_tokens, capped by the context

  int64_t remaining_to_compute() const { return int64_t(tokens.size()) - num_computed; }
};

// What a step reports per sequence: a new token, and/or the end.
struct SequenceEvent {
  int64_t sequence_id = 0;
  int32_t token = -1;  // -1 when the event carries no token
  bool finished = false;
  FinishReason finish_reason = FinishReason::None;
};

}  // namespace troupe
