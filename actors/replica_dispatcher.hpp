#pragma once
// ReplicaDispatcher: a cluster's requests over its data-parallel replicas, without messaging (a
// plain class: the coordinator actor sends what it returns; tests drive it directly). Each replica
// has a continuous-batching Scheduler; its micro-batches go to every rank of the replica (up to the
// pipeline depth in flight), and a micro-batch completes when each of those ranks has answered it
// once — the last stage's tp rank 0 carrying the sampled tokens. Replicas hold the ranks
// [r * R, (r + 1) * R) with R = tp x cp x pp (the "tp-cp-pp-dp" order). Requests are never lost: each
// ends with a finished update (stop, length, abort, or error from fail_all).
//
// Lockstep (wide expert parallelism, ep = tp x dp): every rank of a stage, in every replica, must
// enter each MoE layer's all_to_all together, so the replicas step together — schedule_all() gives
// every replica the same number of micro-batches, padding the idle ones with empty (dummy) steps.
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/cluster_config.hpp"
#include "actors/messages.hpp"
#include "sched/local_model_executor.hpp"
#include "sched/scheduler.hpp"

namespace troupe {

class ReplicaDispatcher {
 public:
  using Clock = std::chrono::steady_clock;
  // A micro-batch past its deadline, and the global ranks that have not answered it.
  struct Overdue {
    int replica = 0;
    int64_t micro_batch = 0;
    double waited_seconds = 0, deadline_seconds = 0;
    std::vector<int> silent_ranks;
  };

  // The schedulers hand out exactly the KV blocks every rank allocates (kv_blocks_for).
  ReplicaDispatcher(const ModelConfig& model, const ClusterConfig& cluster);

  // Queues a request on the replica with the fewest live requests among those `serving` (every
  // replica when none is, or when `serving` is empty) and returns it; throws troupe::Error when the
  // request is invalid.
  int add(int64_t id, const GenerationRequest& request, const std::vector<bool>& serving = {});
  // Aborts a live request: its abort update, or nothing when the id is unknown or finished.
  std::vector<SequenceUpdate> cancel(int64_t id);
  // The micro-batches replica `replica` can start now (each goes to every rank of the replica),
  // sent at `now`.
  std::vector<StepRequest> schedule(int replica, Clock::time_point now = Clock::now());
  // Lockstep: each replica's micro-batches (index: replica); when any replica has work, every replica
  // gets as many (empty ones where it has none). Nothing when no replica has work.
  std::vector<std::vector<StepRequest>> schedule_all(Clock::time_point now = Clock::now());
  bool lockstep() const { return lockstep_; }
  int64_t dummy_steps() const { return dummy_steps_; }  // empty micro-batches sent (lockstep padding)
  // One rank's answer to a step (without error). Once every rank of the replica has answered the
  // micro-batch: its tokens and ends. Nothing for a rank's second answer, a rank outside the
  // replica, or a micro-batch from before fail_all / recompute.
  std::vector<SequenceUpdate> on_step_done(const StepResult& result, Clock::time_point now = Clock::now());
  // The oldest micro-batch in flight longer than its deadline: floor + factor x its tokens x the
  // replica's median time per token over its last 64 micro-batches (sent to answered), or
  // `first_steps` while the replica has answered none (a first prefill may be long); nothing when
  // every one is within its deadline.
  std::optional<Overdue> overdue(Clock::time_point now, std::chrono::milliseconds floor, double factor,
                                 std::chrono::milliseconds first_steps) const;
  // Ends every live request with an error update naming `why`, and restarts the schedulers.
  std::vector<SequenceUpdate> fail_all(const std::string& why);
  // The replica's ranks restart (their KV caches and the micro-batches in flight are lost): its
  // requests wait there to be recomputed from their tokens so far, and go on exactly.
  void recompute(int replica);
  // The replica is given up: its requests go on, recomputed, on the serving replica with the fewest
  // live requests; with none serving they end with an error naming `why` (the updates).
  std::vector<SequenceUpdate> hand_over(int replica, const std::vector<bool>& serving, const std::string& why);

  int num_replicas() const { return int(replicas_.size()); }
  int ranks_per_replica() const { return ranks_per_replica_; }
  int replica_of_rank(int rank) const { return rank / ranks_per_replica_; }
  int replica_of_request(int64_t id) const;  // -1 when not live
  int64_t running() const;                   // live requests: scheduled or waiting
  int64_t replica_live(int replica) const { return int64_t(replicas_.at(size_t(replica)).live.size()); }
  int64_t waiting() const;  // live requests waiting for the scheduler (queued or preempted)
  int64_t preemptions() const;
  int64_t kv_blocks_used() const;
  int64_t kv_blocks_total() const;
  int64_t finished() const { return finished_; }
  int64_t micro_batches_completed() const { return micro_batches_completed_; }  // answered by every rank

 private:
  struct InFlight {
    MicroBatch batch;
    std::vector<bool> answered;  // per rank of the replica
    int answers = 0;
    std::vector<int32_t> sampled;
    Clock::time_point sent;
    bool dummy = false;  // lockstep padding: an empty batch, nothing to complete
  };
  struct Replica {
    std::unique_ptr<Scheduler> scheduler;
    std::map<int64_t, InFlight> in_flight;
    std::vector<int64_t> live;               // request ids not finished
    std::vector<int64_t> released;           // finished since the last step was sent (their samplers go)
    std::deque<double> seconds_per_token{};  // of the last micro-batches, sent to answered
  };
  std::unique_ptr<Scheduler> make_scheduler() const;
  void finished(Replica& replica, int64_t id);

  ModelConfig model_;
  SchedulerConfig scheduler_config_;
  int64_t kv_blocks_ = 0, block_size_ = 16;
  int ranks_per_replica_ = 1, sampler_rank_ = 0;  // sampler: offset within a replica
  bool lockstep_ = false;
  int64_t next_dummy_id_ = -1, dummy_steps_ = 0;  // dummy micro-batches count down from -1
  std::vector<Replica> replicas_;
  int64_t finished_ = 0, micro_batches_completed_ = 0;
};

}  // namespace troupe
