#pragma once
// The bounds a receiver checks on a control-plane message before it uses anything in it: a peer (a
// node, a rank) or a client may send any bytes that deserialise. Plain functions, so the
// coordinator, the engine and the ranks, their unit tests and the message fuzzer
// (tests/fuzz/actor_messages_fuzz.cpp) run the same checks. The `*_problem` functions return why a
// message is refused ("" when it may be used); validate_* throw troupe::Error naming the field and
// its limit (actors/limits.hpp).
#include <cstdint>
#include <string>

#include "actors/limits.hpp"
#include "actors/messages.hpp"

namespace troupe {

// A node's join: names, secret and rank list within bounds (`world_size` ranks in the cluster).
std::string join_problem(const JoinRequest& join, size_t world_size);
// A bootstrap blob's own fields: the exchange size within the cluster, the rank within the
// exchange, the name and blob within bounds (who sent it and the exchange's other members are the
// coordinator's to check).
std::string bootstrap_problem(const BootstrapBlob& blob, size_t world_size);
// A rank's loading progress or readiness: a rank of the cluster, 0 <= done <= total <= the layers
// of the model (the coordinator sums them).
std::string rank_status_problem(const RankStatus& status, size_t world_size, int64_t num_layers);

// A rank's answer to a step: a rank of the cluster, at most `max_sampled` tokens, finite times of
// at most limits::kMaxSeconds (CAF 0.17 never finishes serialising an infinite double, and the
// coordinator re-sends these times to clients in statuses and timelines).
std::string step_result_problem(const StepResult& result, size_t world_size, size_t max_sampled);

// A client's request, before anything is done with it (tokenizing included): the prompt's bytes,
// the number of prompt ids within the model's context (their values are validate_request's),
// max_tokens, stop strings, stop ids (inside the vocabulary) and sampling parameters within
// limits::*.
void validate_submit(const SubmitRequest& request, const ModelConfig& model);

// A micro-batch as a rank receives it: its attention metadata is laid out for blocks of
// `block_size` slots (validate_attention_metadata; the block ids are checked against the cache by
// the attention kernels), every logit row is a token of the batch, and each sampled sequence has a
// logit row and valid sampling parameters.
void validate_step_request(const StepRequest& step, int64_t block_size);

}  // namespace troupe
