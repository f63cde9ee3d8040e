#pragma once
// StageCompute: what one rank computes for its pipeline stage, behind RankWorker's step loop.
// forward() turns the previous stage's activations (empty on the first stage) into this stage's,
// in place, and returns the logits on the last stage; sample() turns one logits row into a token
// (the last stage's tp rank 0 calls it). ModelStage is the real one: this rank's shard of the
// model, its KV cache and its samplers. Other kinds (the bench library's "simulated" stage)
// register a factory by name in stage_compute_kinds(); ClusterConfig::stage picks one. A
// StageCompute is owned by its RankWorker and used from that rank's thread only.
#include <map>
#include <memory>

#include "kernels/error.hpp"
#include "kernels/sampling.hpp"
#include "model/communicator_tp_ops.hpp"
#include "model/llama_model.hpp"

namespace troupe {

class StageCompute {
 public:
  virtual ~StageCompute() = default;
  virtual Tensor forward(const ForwardBatch& batch, StageActivations& activations) = 0;
  // Row `row` of `logits`: the next token of `sequence`, whose last token sits at `position`.
  virtual int32_t sample(const Tensor& logits, int64_t row, int64_t sequence, int64_t position,
                         const SamplingParams& params) = 0;
  virtual void release(int64_t sequence) {}  // the sequence finished: drop what the stage keeps of it
  virtual size_t weight_bytes() const { return 0; }
  virtual double seconds_in_collectives() const { return 0; }
  virtual void reset_counters() {}
};

// A stage kind other than "model", built from the model's shapes, the rank's layout and the kind's
// options (ClusterConfig::stage_options, raw strings it interprets). Registered by static
// initialisers before main, read-only afterwards.
using StageComputeFactory = std::function<std::unique_ptr<StageCompute>(
    const ModelConfig& model, const ParallelLayout& layout, const std::map<std::string, std::string>& options)>;
inline std::map<std::string, StageComputeFactory>& stage_compute_kinds() {
  static std::map<std::string, StageComputeFactory> kinds;
  return kinds;
}

// The real stage. Owns its tp collectives (over the tp group's communicator, shared with its
// GroupCoordinator; null when tp == 1), its context-parallel ring and ulysses collectives (null when
// their degree is 1) and a WeightStore copy (keeping the checkpoint mapped).
class ModelStage : public StageCompute {
 public:
  ModelStage(const ModelConfig& config, const WeightStore& weights, const ParallelLayout& layout, int64_t num_kv_blocks,
             int64_t block_size, std::shared_ptr<DeviceCommunicator> tp_comm,
             const std::function<void(int64_t, int64_t)>& on_progress = {},
             std::shared_ptr<DeviceCommunicator> ring_comm = nullptr,
             std::shared_ptr<DeviceCommunicator> ulysses_comm = nullptr,
             std::shared_ptr<DeviceCommunicator> ep_comm = nullptr)
      : weights_(weights) {
    auto ops_of = [&](std::shared_ptr<DeviceCommunicator> comm, int size, const char* what) {
      if (size == 1) return std::unique_ptr<CommunicatorTpOps>();
      if (!comm) fail("{}: {} size {} needs a communicator", layout.describe(), what, size);
      return std::make_unique<CommunicatorTpOps>(std::move(comm));
    };
    tp_ops_ = ops_of(std::move(tp_comm), layout.tp_size, "tensor parallel");
    ring_ops_ = ops_of(std::move(ring_comm), layout.ring_degree, "ring attention");
    ulysses_ops_ = ops_of(std::move(ulysses_comm), layout.ulysses_degree, "ulysses attention");
    ep_ops_ = ops_of(std::move(ep_comm), layout.wide_expert_parallel() ? layout.ep_size : 1, "expert parallel");
    model_ = std::make_unique<LlamaModel>(config, weights_, layout, tp_ops_.get(), on_progress,
                                          ContextParallelGroups{ring_ops_.get(), ulysses_ops_.get()}, ep_ops_.get());
    cache_ = model_->make_kv_cache(num_kv_blocks, block_size);
  }

  Tensor forward(const ForwardBatch& batch, StageActivations& act) override {
    return model_->forward(batch, cache_, act);
  }
  int32_t sample(const Tensor& logits, int64_t row, int64_t, int64_t position, const SamplingParams& params) override {
    return Sampler(params).sample(logits.data<float>() + row * logits.size(1), logits.size(1), position);
  }
  size_t weight_bytes() const override { return model_->weight_bytes(); }
  double seconds_in_collectives() const override {
    double s = 0;
    for (const auto* ops : {tp_ops_.get(), ring_ops_.get(), ulysses_ops_.get(), ep_ops_.get()})
      if (ops) s += ops->seconds_in_collectives();
    return s;
  }
  // The context-parallel exchanges (ring and ulysses), part of seconds_in_collectives(): calls,
  // seconds (a ring exchange runs beside the attention, so its seconds overlap compute) and bytes sent.
  CommunicatorTpOps::AllToAllStats context_parallel_stats() const {
    CommunicatorTpOps::AllToAllStats total;
    for (const auto* ops : {ring_ops_.get(), ulysses_ops_.get()})
      if (ops) {
        total.calls += ops->all_to_all_stats().calls;
        total.seconds += ops->all_to_all_stats().seconds;
        total.bytes_sent += ops->all_to_all_stats().bytes_sent;
      }
    return total;
  }
  void reset_counters() override {
    for (auto* ops : {tp_ops_.get(), ring_ops_.get(), ulysses_ops_.get(), ep_ops_.get()})
      if (ops) ops->reset_counters();
    model_->reset_expert_load();
  }

  const LlamaModel& model() const { return *model_; }
  size_t kv_cache_bytes() const { return cache_.bytes(); }
  // The expert dispatch's all_to_all traffic (over the wide expert group, or the tp group).
  CommunicatorTpOps::AllToAllStats all_to_all_stats() const {
    const CommunicatorTpOps* ops = ep_ops_ ? ep_ops_.get() : tp_ops_.get();
    return ops ? ops->all_to_all_stats() : CommunicatorTpOps::AllToAllStats{};
  }

 private:
  WeightStore weights_;
  std::unique_ptr<CommunicatorTpOps> tp_ops_, ring_ops_, ulysses_ops_, ep_ops_;
  std::unique_ptr<LlamaModel> model_;
  KvCache cache_;
};

}  // namespace troupe
