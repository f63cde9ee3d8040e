#pragma once
// Scheduler: continuous batching over a paged KV cache, as vLLM schedules.
//  - Every step, running sequences that have one token left to compute (decode) go first, then
//    prefill chunks of the others in arrival order, under max_num_batched_tokens and max_num_seqs.
//  - KV blocks are reserved as sequences grow; when they run out, the newest sequence is preempted
//    (its blocks freed, its tokens kept) and later recomputed — its output stays identical.
//  - Pipeline micro-batching: a sequence in flight is not scheduled again until its micro-batch
//    completes, and each micro-batch takes at most 1/depth of the live sequences, so `depth`
//    micro-batches can be in flight at once (stage k runs micro-batch i while stage k+1 runs i-1).
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "model/forward_batch.hpp"
#include "model/model_config.hpp"
#include "sched/kv_block_manager.hpp"
#include "sched/sequence.hpp"

namespace troupe {

struct SchedulerConfig {
  int64_t max_num_seqs = 64;
  int64_t max_num_batched_tokens = 512;
  int pipeline_depth = 1;  // micro-batches in flight (= pp)
};

// One scheduled step: which tokens of which sequences it computes, and the ForwardBatch for them.
struct MicroBatch {
  struct Chunk {
    int64_t sequence_id;
    int64_t start, length;  // tokens [start, start + length)
    bool samples;           // the chunk reaches the end of the sequence: its last row is sampled
  };
  int64_t id = 0;
  std::vector<Chunk> chunks;
  ForwardBatch batch;
  std::vector<int64_t> sampled_sequences;  // sequence per logit row
  std::vector<SamplingParams> sampling;    // per logit row
};

class Scheduler {
 public:
  Scheduler(const ModelConfig& model, int64_t num_blocks, int64_t block_size, const SchedulerConfig& config);

  // Validates (throws troupe::Error) and queues the request.
  void add(int64_t sequence_id, const GenerationRequest& request);
  // Frees the sequence at once; a result of its in-flight micro-batch is then ignored. False when
  // the id is unknown or already finished.
  bool abort(int64_t sequence_id);

  // The next micro-batch, or nothing when no sequence can advance now.
  std::optional<MicroBatch> schedule();
  // Applies the tokens sampled for `mb` (one per logit row, in order) and returns the events.
  std::vector<SequenceEvent> complete(const MicroBatch& mb, const std::vector<int32_t>& sampled);

  // The KV cache is gone (its ranks restarted): every unfinished sequence waits to be recomputed
  // from its tokens (prompt + generated so far) and the micro-batches in flight are forgotten —
  // complete() must not be called for them. Arrival order, tokens and micro-batch ids go on, so
  // the sequences continue exactly where they were.
  void recompute_all();
  // Takes every unfinished sequence out (to go on elsewhere): its id and a request whose prompt is
  // the tokens so far and whose max_tokens is what is left, in arrival order.
  std::vector<std::pair<int64_t, GenerationRequest>> take_unfinished();

  bool has_unfinished() const { return live_ > 0; }
  int64_t in_flight() const { return in_flight_; }
  const Sequence* find(int64_t sequence_id) const;
  int64_t num_preemptions() const { return preemptions_; }
  const KvBlockManager& blocks() const { return blocks_; }

 private:
  bool reserve_or_preempt(Sequence& seq, int64_t tokens);
  // Ends `seq` with an event carrying `token` (-1: none); erases it unless a micro-batch holds it.
  void finish(Sequence& seq, FinishReason reason, std::vector<SequenceEvent>& events, int32_t token = -1);

  ModelConfig model_;
  SchedulerConfig config_;
  KvBlockManager blocks_;
  std::map<int64_t, Sequence> sequences_;
  int64_t next_arrival_ = 0, next_micro_batch_ = 0;
  int64_t live_ = 0, in_flight_ = 0, preemptions_ = 0;
};

}  // namespace troupe
