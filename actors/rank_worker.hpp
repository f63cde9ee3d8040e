#pragma once
// RankWorker: what one device rank does, without the messaging around it — its shard of the model
// (its pipeline stage's layers, its tensor-parallel slice), its KV cache, its tp communicator and
// the pipeline transport. step() runs one micro-batch: receive the previous stage's activations
// (unless first), run the stage, send them on (unless last) or return the logits (last stage).
// RankActor wraps one in a CAF actor; LocalGroupExecutor runs several on threads.
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "comm/ucx_p2p_transport.hpp"
#include "model/communicator_tp_ops.hpp"
#include "model/llama_model.hpp"
#include "model/weight_store.hpp"

namespace troupe {

struct RankPlacement {
  ParallelLayout layout;
  int global_rank = 0;
  int prev_stage_rank = -1;  // global rank this rank receives activations from (-1: first stage)
  int next_stage_rank = -1;  // global rank it sends to (-1: last stage)
};

// Global rank of (tp_rank, pp_rank) in the "tp-pp" order (tp fastest), within data-parallel replica dp_rank.
int global_rank_of(int tp_rank, int pp_rank, int dp_rank, int tp, int pp);
// ep: expert-parallel size (1, or tp: the experts are partitioned over the tp group).
RankPlacement place_rank(int global_rank, int tp, int pp, const std::vector<int64_t>& pp_partition, int ep = 1);

// A stage whose compute is replaced by a cost model (pipeline experiments): it waits
// layer_fraction * (fixed_ms + per_token_ms * tokens), then passes on activations of the real shape.
struct SimulatedStage {
  double fixed_ms = 0, per_token_ms = 0;
  bool busy_wait = false;
  double layer_fraction = 1.0;
};

class RankWorker {
 public:
  // Simulated: no weights; `config` gives the activation shape.
  RankWorker(const ModelConfig& config, const RankPlacement& placement, const SimulatedStage& simulation,
             UcxP2PTransport* transport);
  ~RankWorker();  // drains the activations still queued for the next stage
  // tp_comm may be null when tp == 1; transport may be null when pp == 1.
  RankWorker(const ModelConfig& config, const WeightStore& weights, const RankPlacement& placement,
             int64_t num_kv_blocks, int64_t block_size, std::shared_ptr<DeviceCommunicator> tp_comm,
             UcxP2PTransport* transport, const std::function<void(int64_t, int64_t)>& on_progress = {});

  // Logits [rows, vocab] on the last stage; undefined elsewhere.
  Tensor step(const ForwardBatch& batch);

  const RankPlacement& placement() const { return placement_; }
  const LlamaModel& model() const { return *model_; }
  bool simulated() const { return simulation_.has_value(); }
  size_t weight_bytes() const { return model_ ? model_->weight_bytes() : 0; }
  double seconds_in_collectives() const { return tp_ops_ ? tp_ops_->seconds_in_collectives() : 0.0; }
  double seconds_in_transfers() const { return transfer_seconds_; }
  double seconds_receiving() const { return recv_seconds_; }
  CommunicatorTpOps::AllToAllStats all_to_all_stats() const {
    return tp_ops_ ? tp_ops_->all_to_all_stats() : CommunicatorTpOps::AllToAllStats{};
  }
  size_t kv_cache_bytes() const { return cache_.bytes(); }
  void reset_counters();

 private:
  RankPlacement placement_;
  std::unique_ptr<CommunicatorTpOps> tp_ops_;
  std::unique_ptr<LlamaModel> model_;
  KvCache cache_;
  UcxP2PTransport* transport_ = nullptr;
  std::optional<SimulatedStage> simulation_;
  int64_t hidden_size_ = 0;
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
