#include "actors/rank_worker.hpp"

#include <chrono>

#include "kernels/error.hpp"

namespace troupe {

int global_rank_of(int tp_rank, int pp_rank, int dp_rank, int tp, int pp) { return tp_rank + pp_rank * tp + dp_rank * tp * pp; }

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
  if (!p.layout.first_stage()) p.prev_stage_rank = global_rank_of(p.layout.tp_rank, p.layout.pp_rank - 1, dp_rank, tp, pp);
  if (!p.layout.last_stage()) p.next_stage_rank = global_rank_of(p.layout.tp_rank, p.layout.pp_rank + 1, dp_rank, tp, pp);
  return p;
}

RankWorker::RankWorker(const ModelConfig& config, const WeightStore& weights, const RankPlacement& placement,
                       int64_t num_kv_blocks, int64_t block_size, std::shared_ptr<DeviceCommunicator> tp_comm,
                       UcxP2PTransport* transport, const std::function<void(int64_t, int64_t)>& on_progress)
    : placement_(placement), transport_(transport) {
  if (placement.layout.tp_size > 1) {
    if (!tp_comm) fail("rank {}: tensor parallel size {} needs a tp communicator", placement.global_rank, placement.layout.tp_size);
    tp_ops_ = std::make_unique<CommunicatorTpOps>(std::move(tp_comm));
  }
  if (placement.layout.pp_size > 1 && !transport_)
    fail("rank {}: pipeline parallel size {} needs a p2p transport", placement.global_rank, placement.layout.pp_size);
  model_ = std::make_unique<LlamaModel>(config, weights, placement.layout, tp_ops_.get(), on_progress);
  cache_ = model_->make_kv_cache(num_kv_blocks, block_size);
}

void RankWorker::reset_counters() {
  transfer_seconds_ = 0;
  if (tp_ops_) tp_ops_->reset_counters();
  model_->reset_expert_load();
}

Tensor RankWorker::step(const ForwardBatch& batch) {
  StageActivations act;
  if (placement_.prev_stage_rank >= 0) {
    auto t0 = std::chrono::steady_clock::now();
    IntermediateTensors in = transport_->recv(placement_.prev_stage_rank);
    transfer_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    act.hidden_states = in.at("hidden_states");
    act.residual = in.at("residual");
  }
  Tensor logits = model_->forward(batch, cache_, act);
  if (placement_.next_stage_rank >= 0) {
    auto t0 = std::chrono::steady_clock::now();
    transport_->send(IntermediateTensors{{"hidden_states", act.hidden_states.contiguous()}, {"residual", act.residual.contiguous()}},
                     placement_.next_stage_rank);
    transfer_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return logits;
}

}  // namespace troupe
