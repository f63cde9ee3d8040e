#pragma once
// Sequence: one request as the scheduler tracks it — its tokens (prompt + generated), how many of
// them have KV computed, and where it is in its life.
#include <cstdint>
#include <string>
#include <vector>

#include "sched/batch_generator.hpp"

namespace troupe {

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

  int64_t num_generated() const { return int64_t(tokens.size() - prompt_len); }
  int64_t remaining_to_compute() const { return int64_t(tokens.size()) - num_computed; }
};

// What a step reports per sequence: a new token, and/or the end.
struct SequenceEvent {
  int64_t sequence_id = 0;
  int32_t token = -1;  // -1 when the event carries no token
  bool finished = false;
  std::string finish_reason;  // "stop", "length", "abort"
};

}  // namespace troupe
