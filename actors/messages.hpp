#pragma once
// The control-plane vocabulary of a troupe cluster: CAF atoms and the typed messages the
// coordinator, the engine, the node processes, the rank actors and clients exchange. Activations
// never travel here (they go rank to rank over UCX); these are small. Every struct has an
// `inspect` overload so CAF can serialise it between processes; make_actor_system_config() adds
// them all to an actor_system_config (both ends must call it). The typed handles at the end are
// the interfaces of the coordinator, engine, rank, node and client-listener actors.
#include <caf/all.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "actors/cluster_membership.hpp"
#include "actors/tls_credentials.hpp"
#include "model/forward_batch.hpp"
#include "sched/sequence.hpp"

namespace troupe {

// ---- atoms (at most 10 characters) ----
using join_atom = caf::atom_constant<caf::atom("join")>;
using bootstrap_atom = caf::atom_constant<caf::atom("bootstrap")>;
using loaded_atom = caf::atom_constant<caf::atom("loaded")>;
using progress_atom = caf::atom_constant<caf::atom("progress")>;
using heartbeat_atom = caf::atom_constant<caf::atom("heartbeat")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using step_atom = caf::atom_constant<caf::atom("step")>;
using step_done_atom = caf::atom_constant<caf::atom("step_done")>;
using submit_atom = caf::atom_constant<caf::atom("submit")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using seq_event_atom = caf::atom_constant<caf::atom("seq_event")>;
using engine_atom = caf::atom_constant<caf::atom("engine")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using shutdown_atom = caf::atom_constant<caf::atom("shutdown")>;
using start_atom = caf::atom_constant<caf::atom("start")>;
using timeline_atom = caf::atom_constant<caf::atom("timeline")>;
using restart_atom = caf::atom_constant<caf::atom("restart")>;

// One rank's blob for an address exchange (UCX worker addresses); the reply carries every rank's
// blob of the exchange, indexed by rank in the group.
struct BootstrapBlob {
  std::string exchange;  // "pp-0" (replica 0's pipeline), "tp-0" (the tp group from rank 0), ...
  int32_t rank = 0;      // rank within the exchange
  int32_t size = 1;
  std::string blob;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, BootstrapBlob& x) {
  return f(caf::meta::type_name("troupe.BootstrapBlob"), x.exchange, x.rank, x.size, x.blob);
}
struct BootstrapBlobs {
  std::vector<std::string> blobs;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, BootstrapBlobs& x) {
  return f(caf::meta::type_name("troupe.BootstrapBlobs"), x.blobs);
}

// A rank reports loading progress (layers) and then ready, or a failure.
struct RankStatus {
  int32_t rank = 0;
  int64_t done = 0, total = 0;
  bool ready = false;
  std::string error;
  int64_t weight_bytes = 0;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, RankStatus& x) {
  return f(caf::meta::type_name("troupe.RankStatus"), x.rank, x.done, x.total, x.ready, x.error, x.weight_bytes);
}

// ForwardBatch and SamplingParams travel as they are.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, AttentionMetadata& x) {
  return f(caf::meta::type_name("troupe.AttentionMetadata"), x.block_size, x.positions, x.sequence_of_token,
           x.block_tables);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ForwardBatch& x) {
  return f(caf::meta::type_name("troupe.ForwardBatch"), x.token_ids, x.attention, x.logit_rows);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, SamplingParams& x) {
  return f(caf::meta::type_name("troupe.SamplingParams"), x.temperature, x.top_p, x.top_k, x.seed);
}

// One micro-batch for every rank of a data-parallel replica: the batch, and what the last stage
// needs to sample (per logit row: the sequence and its sampling parameters).
struct StepRequest {
  int64_t micro_batch = 0;
  ForwardBatch batch;
  std::vector<int64_t> sample_sequences;
  std::vector<SamplingParams> sampling;
  std::vector<int64_t> released_sequences;  // finished since the last step: drop their samplers
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, StepRequest& x) {
  return f(caf::meta::type_name("troupe.StepRequest"), x.micro_batch, x.batch, x.sample_sequences, x.sampling,
           x.released_sequences);
}

// Every rank answers every step; the last stage's tp rank 0 carries the sampled tokens.
struct StepResult {
  int64_t micro_batch = 0;
  int32_t rank = 0;
  std::vector<int32_t> sampled;
  std::string error;
  double compute_seconds = 0, collective_seconds = 0, transfer_seconds = 0;
  double recv_seconds = 0;              // waiting for the previous stage's activations (part of transfer_seconds)
  double start_time = 0, end_time = 0;  // seconds on the rank's steady clock (timelines)
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, StepResult& x) {
  return f(caf::meta::type_name("troupe.StepResult"), x.micro_batch, x.rank, x.sampled, x.error, x.compute_seconds,
           x.collective_seconds, x.transfer_seconds, x.recv_seconds, x.start_time, x.end_time);
}

// Every step result the coordinator recorded (with [experiment] record_timeline).
struct Timeline {
  std::vector<StepResult> steps;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, Timeline& x) {
  return f(caf::meta::type_name("troupe.Timeline"), x.steps);
}

// A rank: `start` (run id) after the join was accepted, then one `step` per micro-batch.
using RankHandle = caf::typed_actor<caf::reacts_to<start_atom, std::string>, caf::reacts_to<step_atom, StepRequest>>;
// A node's heartbeat actor: `shutdown` stops the node's ranks and the node; `restart` (the cluster's
// new epoch) starts the node process again, to join afresh.
using NodeHandle =
    caf::typed_actor<caf::reacts_to<tick_atom>, caf::reacts_to<shutdown_atom>, caf::reacts_to<restart_atom, int64_t>>;

// A node process announces itself and its rank actors.
struct JoinRequest {
  std::string cluster;
  std::string secret;
  std::string node;
  std::string host;
  int32_t pid = 0;
  std::vector<int32_t> ranks;
  std::vector<RankHandle> rank_actors;  // same order as ranks
  NodeHandle node_actor;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, JoinRequest& x) {
  return f(caf::meta::type_name("troupe.JoinRequest"), x.cluster, x.secret, x.node, x.host, x.pid, x.ranks,
           x.rank_actors, x.node_actor);
}

// The coordinator's answer: the run's identity (names shared-memory segments) or a refusal.
struct JoinReply {
  bool accepted = false;
  std::string reason;
  std::string run_id;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, JoinReply& x) {
  return f(caf::meta::type_name("troupe.JoinReply"), x.accepted, x.reason, x.run_id);
}

// A client's request (prompt text or ids) with its sampling parameters.
struct SubmitRequest {
  std::string prompt;
  std::vector<int32_t> prompt_ids;
  int64_t max_tokens = 16;
  float temperature = 0.0f, top_p = 1.0f;
  int32_t top_k = 0;
  uint64_t seed = 0;
  std::vector<int32_t> stop_token_ids;
  std::vector<std::string> stop;
  bool ignore_eos = false;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, SubmitRequest& x) {
  return f(caf::meta::type_name("troupe.SubmitRequest"), x.prompt, x.prompt_ids, x.max_tokens, x.temperature, x.top_p,
           x.top_k, x.seed, x.stop_token_ids, x.stop, x.ignore_eos);
}

// Streamed to the client: one per generated token, then exactly one finished event.
struct TokenEvent {
  int64_t request_id = 0;
  int32_t token = 0;
  std::string text;       // the text this token completes (may be empty mid-character)
  bool has_text = false;  // the cluster detokenizes (its model has a tokenizer)
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, TokenEvent& x) {
  return f(caf::meta::type_name("troupe.TokenEvent"), x.request_id, x.token, x.text, x.has_text);
}
struct FinishedEvent {
  int64_t request_id = 0;
  FinishReason reason = FinishReason::None;
  std::string error;  // set when reason == Error
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> ids;
  std::string text;
  int64_t prompt_tokens = 0, completion_tokens = 0;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, FinishedEvent& x) {
  return f(caf::meta::type_name("troupe.FinishedEvent"), x.request_id, x.reason, x.error, x.prompt_ids, x.ids, x.text,
           x.prompt_tokens, x.completion_tokens);
}

// Coordinator -> engine: what happened to a sequence this step.
struct SequenceUpdate {
  int64_t request_id = 0;
  int32_t token = -1;
  bool finished = false;
  FinishReason reason = FinishReason::None;
  std::string error;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, SequenceUpdate& x) {
  return f(caf::meta::type_name("troupe.SequenceUpdate"), x.request_id, x.token, x.finished, x.reason, x.error);
}

// The cluster as the coordinator sees it.
struct ClusterStatus {
  ClusterState state = ClusterState::Starting;
  std::string detail;
  int32_t ranks_joined = 0, ranks_ready = 0, world_size = 0;
  int64_t running = 0, waiting = 0, finished = 0, preemptions = 0;
  int64_t kv_blocks_used = 0, kv_blocks_total = 0;  // over every replica's KV cache (block manager)
  std::vector<int64_t> rank_steps;                  // per rank: steps answered, and seconds they took
  std::vector<double> rank_step_seconds;
  int64_t refused_messages = 0;      // dropped by the coordinator: wrong sender or out-of-range fields
  int64_t recoveries = 0;            // times the cluster restarted its nodes after a failure (the epoch)
  double last_recovery_seconds = 0;  // failure to ready again, of the last completed recovery
  int64_t dummy_steps = 0;           // empty micro-batches of idle replicas stepping in lockstep (wide ep)
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ClusterStatus& x) {
  return f(caf::meta::type_name("troupe.ClusterStatus"), x.state, x.detail, x.ranks_joined, x.ranks_ready, x.world_size,
           x.running, x.waiting, x.finished, x.preemptions, x.kv_blocks_used, x.kv_blocks_total, x.rank_steps,
           x.rank_step_seconds, x.refused_messages, x.recoveries, x.last_recovery_seconds, x.dummy_steps);
}

// ---- the actors' interfaces ----
// A client's listener: a request's tokens, then exactly one FinishedEvent.
using ListenerHandle = caf::typed_actor<caf::reacts_to<TokenEvent>, caf::reacts_to<FinishedEvent>>;
// The engine: submit (answers the request id), cancel, the coordinator's sequence updates, status.
using EngineHandle =
    caf::typed_actor<caf::replies_to<submit_atom, SubmitRequest, ListenerHandle>::with<int64_t>,
                     caf::reacts_to<cancel_atom, int64_t>, caf::reacts_to<seq_event_atom, SequenceUpdate>,
                     caf::replies_to<status_atom>::with<ClusterStatus>>;
// The coordinator: membership (join, bootstrap, progress, loaded, heartbeat), the engine it
// reports to, requests (submit, cancel), the ranks' step replies, status and shutdown.
using CoordinatorHandle =
    caf::typed_actor<caf::replies_to<join_atom, JoinRequest>::with<JoinReply>,
                     caf::replies_to<bootstrap_atom, BootstrapBlob>::with<BootstrapBlobs>,
                     caf::reacts_to<progress_atom, RankStatus>, caf::reacts_to<loaded_atom, RankStatus>,
                     caf::reacts_to<heartbeat_atom, std::string>, caf::reacts_to<tick_atom>,
                     caf::reacts_to<engine_atom, EngineHandle>, caf::replies_to<engine_atom>::with<EngineHandle>,
                     caf::reacts_to<submit_atom, int64_t, SubmitRequest>, caf::reacts_to<cancel_atom, int64_t>,
                     caf::reacts_to<step_done_atom, StepResult>, caf::replies_to<status_atom>::with<ClusterStatus>,
                     caf::replies_to<timeline_atom>::with<Timeline>, caf::reacts_to<shutdown_atom>>;

// The configuration every troupe actor system starts from: the middleman, every message type
// above, CAF's logger quiet, the scheduler's idle polling tuned. With `tls` enabled (its files are
// checked first) also CAF's OpenSSL module with those credentials: the process then publishes and
// connects only through mutual TLS (publish_coordinator / connect_to_coordinator below).
std::unique_ptr<caf::actor_system_config> make_actor_system_config(const TlsCredentials& tls = {});
// Publishes the coordinator at host:port (0 = any free port) through TLS when `tls` is enabled.
// Returns the port, or throws troupe::Error naming the address.
uint16_t publish_coordinator(const CoordinatorHandle& coordinator, const std::string& host, int port,
                             const TlsCredentials& tls);
// The coordinator published at host:port, retried every 100 ms (it may still be starting) until
// `timeout`; then throws troupe::Error naming the address, CAF's last error and, without `tls`,
// that a TLS cluster refuses a process without a certificate. `tls` must be what `system` was
// configured with.
CoordinatorHandle connect_to_coordinator(caf::actor_system& system, const std::string& host, int port,
                                         std::chrono::milliseconds timeout, const TlsCredentials& tls = {});

}  // namespace troupe
