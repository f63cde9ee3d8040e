#include "actors/rank_worker.hpp"

#include <chrono>
#include <thread>

#include "kernels/error.hpp"

namespace troupe {

int global_rank_of(int tp_rank, int pp_rank, int dp_rank, int tp, int pp) {
  return tp_rank + pp_rank * tp + dp_rank * tp * pp;
}

RankPlacement place_rank(int global_rank, int tp, int pp, const std::vector<int64_t>& pp_partition, int ep) {
  RankPlacement p;
  p.global_rank = global_rank;
  p.layout.tp_size = tp;
  p.layout.ep_size = ep;
  p.layout.pp_size = pp;
  p.layout.tp_rank = global_rank % tp;
  p.layout.pp_rank = (global_rank / tp) % pp;
  p.layout.pp_partition = pp_partition;
  const int dp_rank = global_rank / (tp * pp);
  if (!p.layout.first_stage())
    p.prev_stage_rank = global_rank_of(p.layout.tp_rank, p.layout.pp_rank - 1, dp_rank, tp, pp);
  if (!p.layout.last_stage())
    p.next_stage_rank = global_rank_of(p.layout.tp_rank, p.layout.pp_rank + 1, dp_rank, tp, pp);
  return p;
}

RankWorker::RankWorker(const ModelConfig& config, const WeightStore& weights, const RankPlacement& placement,
                       int64_t num_kv_blocks, int64_t block_size, std::shared_ptr<DeviceCommunicator> tp_comm,
                       UcxP2PTransport* transport, const std::function<void(int64_t, int64_t)>& on_progress)
    : placement_(placement), transport_(transport) {
  if (placement.layout.tp_size > 1) {
    if (!tp_comm)
      fail("rank {}: tensor parallel size {} needs a tp communicator", placement.global_rank, placement.layout.tp_size);
    tp_ops_ = std::make_unique<CommunicatorTpOps>(std::move(tp_comm));
  }
  if (placement.layout.pp_size > 1 && !transport_)
    fail("rank {}: pipeline parallel size {} needs a p2p transport", placement.global_rank, placement.layout.pp_size);
  model_ = std::make_unique<LlamaModel>(config, weights, placement.layout, tp_ops_.get(), on_progress);
  cache_ = model_->make_kv_cache(num_kv_blocks, block_size);
  if (placement_.next_stage_rank >= 0) sender_ = std::thread([this] { sender_loop(); });
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
      transport_->send(tensors, placement_.next_stage_rank);
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

RankWorker::RankWorker(const ModelConfig& config, const RankPlacement& placement, const SimulatedStage& simulation,
                       UcxP2PTransport* transport)
    : placement_(placement), transport_(transport), simulation_(simulation), hidden_size_(config.hidden_size) {
  if (placement.layout.pp_size > 1 && !transport_)
    fail("rank {}: pipeline parallel size {} needs a p2p transport", placement.global_rank, placement.layout.pp_size);
  if (placement_.next_stage_rank >= 0) sender_ = std::thread([this] { sender_loop(); });
}

namespace {
void simulate_compute(const SimulatedStage& s, int64_t tokens) {
  const double ms = s.layer_fraction * (s.fixed_ms + s.per_token_ms * double(tokens));
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double, std::milli>(ms);
  // Sleeping leaves the core free (the modelled device is what is busy); the last stretch is spun
  // because a sleep overshoots by the kernel's timer slack, which would bias short stages.
  if (!s.busy_wait) std::this_thread::sleep_until(until - std::chrono::microseconds(300));
  while (std::chrono::steady_clock::now() < until) {
  }
}
}  // namespace

void RankWorker::reset_counters() {
  transfer_seconds_ = recv_seconds_ = 0;
  if (tp_ops_) tp_ops_->reset_counters();
  if (model_) model_->reset_expert_load();
}

Tensor RankWorker::step(const ForwardBatch& batch) {
  StageActivations act;
  if (placement_.prev_stage_rank >= 0) {
    auto t0 = std::chrono::steady_clock::now();
    IntermediateTensors in = transport_->recv(placement_.prev_stage_rank);
    recv_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    transfer_seconds_ += recv_seconds_;
    act.hidden_states = in.at("hidden_states");
    act.residual = in.at("residual");
  }
  Tensor logits;
  if (simulation_) {
    simulate_compute(*simulation_, batch.num_tokens());
    if (!act.hidden_states.defined()) {
      act.hidden_states = Tensor::zeros({batch.num_tokens(), hidden_size_}, DType::F32);
      act.residual = Tensor::zeros({batch.num_tokens(), hidden_size_}, DType::F32);
    }
  } else {
    logits = model_->forward(batch, cache_, act);
  }
  if (placement_.next_stage_rank >= 0)
    enqueue_send(IntermediateTensors{{"hidden_states", act.hidden_states.contiguous()},
                                     {"residual", act.residual.contiguous()}});
  return logits;
}

}  // namespace troupe
