#pragma once
// RankWorker: one device rank's step loop, without the messaging around it. step() runs one
// micro-batch: receive the previous stage's activations (unless first), run the stage's
// StageCompute, send the activations on (unless last) or return the logits (last stage).
// build_rank (actors/rank_builder.hpp) makes one; RankActor wraps it in a CAF actor,
// LocalGroupExecutor runs several on threads.
//
// Owns its StageCompute. Borrows the transport: it must outlive the worker (BuiltRank declares it
// before the worker); it may be null when pp == 1.
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#include "actors/stage_compute.hpp"
#include "comm/ucx_p2p_transport.hpp"

namespace troupe {

class RankWorker {
 public:
  // prev/next_stage_rank: the transport's ranks (the index in the replica) activations come from / go
  // to (-1: first / last stage).
  RankWorker(std::unique_ptr<StageCompute> compute, const ParallelLayout& layout, int prev_stage_rank,
             int next_stage_rank, UcxP2PTransport* transport);
  ~RankWorker();  // drains the activations still queued for the next stage

  // Logits [rows, vocab] on the last stage; undefined elsewhere.
  Tensor step(const ForwardBatch& batch);

  const ParallelLayout& layout() const { return layout_; }
  StageCompute& compute() const { return *compute_; }
  double seconds_in_transfers() const { return transfer_seconds_; }
  double seconds_receiving() const { return recv_seconds_; }
  void reset_counters();

 private:
  std::unique_ptr<StageCompute> compute_;
  ParallelLayout layout_;
  int prev_stage_rank_, next_stage_rank_;
  UcxP2PTransport* transport_;
  double transfer_seconds_ = 0, recv_seconds_ = 0;

  // Activations go to the next stage from a sender thread, so a stage starts its next micro-batch
  // at once instead of waiting for the next stage to take the previous one (UCX rendezvous).
  void sender_loop();
  void enqueue_send(IntermediateTensors tensors);
  std::mutex send_mutex_;
  std::condition_variable send_cv_;
  std::deque<IntermediateTensors> send_queue_;
  std::exception_ptr send_error_;
  bool send_stop_ = false;
  std::thread sender_;
};

}  // namespace troupe
