#include "actors/rank_worker.hpp"

#include <chrono>

#include "kernels/error.hpp"

namespace troupe {

RankWorker::RankWorker(std::unique_ptr<StageCompute> compute, const ParallelLayout& layout, int prev_stage_rank,
                       int next_stage_rank, UcxP2PTransport* transport)
    : compute_(std::move(compute)),
      layout_(layout),
      prev_stage_rank_(prev_stage_rank),
      next_stage_rank_(next_stage_rank),
      transport_(transport) {
  if (layout.pp_size > 1 && !transport_) fail("{}: pipeline parallelism needs a p2p transport", layout.describe());
  if (next_stage_rank_ >= 0) sender_ = std::thread([this] { sender_loop(); });
}

RankWorker::~RankWorker() {
  {
    std::lock_guard lock(send_mutex_);
    send_stop_ = true;
  }
  send_cv_.notify_all();
  if (sender_.joinable()) sender_.join();
}

void RankWorker::sender_loop() {
  std::unique_lock lock(send_mutex_);
  for (;;) {
    send_cv_.wait(lock, [&] { return send_stop_ || !send_queue_.empty(); });
    if (send_queue_.empty()) return;  // stopping with nothing left to send
    IntermediateTensors tensors = std::move(send_queue_.front());
    lock.unlock();
    try {
      transport_->send(tensors, next_stage_rank_);
    } catch (...) {
      lock.lock();
      send_error_ = std::current_exception();
      send_queue_.pop_front();
      continue;
    }
    lock.lock();
    send_queue_.pop_front();
  }
}

void RankWorker::enqueue_send(IntermediateTensors tensors) {
  std::lock_guard lock(send_mutex_);
  if (send_error_) std::rethrow_exception(std::exchange(send_error_, nullptr));
  send_queue_.push_back(std::move(tensors));
  send_cv_.notify_all();
}

void RankWorker::reset_counters() {
  transfer_seconds_ = recv_seconds_ = 0;
  compute_->reset_counters();
}

Tensor RankWorker::step(const ForwardBatch& batch) {
  StageActivations act;
  if (prev_stage_rank_ >= 0) {
    auto t0 = std::chrono::steady_clock::now();
    IntermediateTensors in = transport_->recv(prev_stage_rank_);
    recv_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    transfer_seconds_ += recv_seconds_;
    act.hidden_states = in.at("hidden_states");
    act.residual = in.at("residual");
  }
  Tensor logits = compute_->forward(batch, act);
  if (next_stage_rank_ >= 0)
    enqueue_send(IntermediateTensors{{"hidden_states", act.hidden_states.contiguous()},
                                     {"residual", act.residual.contiguous()}});
  return logits;
}

}  // namespace troupe
