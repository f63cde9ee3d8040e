#pragma once
// LocalGroupExecutor: a tensor x context x pipeline group of ranks (times dp replicas) on this host, one thread per
// rank, each built by build_rank (as `troupe cluster` builds its ranks). Threads rather than processes because the
// ranks then share the one mmapped checkpoint and start in milliseconds; the communication is the same real thing
// either way — tp collectives through a POSIX shared-memory segment (ShmCommunicator) and pipeline activations through
// UCX tag send/recv (UcxP2PTransport, bootstrapped over a loopback TCP rendezvous). Multi-process layouts are what
// `troupe cluster` runs.
//
// execute() hands the batch to every rank and returns the last stage's logits (tp rank 0's). With dp
// replicas each sequence of a batch goes to one replica — a new one (starting at position 0) to the
// replica with the fewest tokens in the step, remembered by its first KV block so that it stays there
// while it lives — and every replica steps, an idle one with an empty batch
// (under wide expert parallelism, ep = tp x dp, every rank must enter every MoE all_to_all); every
// replica's cache has all the blocks. The logits come back in the batch's logit-row order.
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "actors/rank_builder.hpp"
#include "sched/local_model_executor.hpp"
#include "sched/model_executor.hpp"

namespace troupe {

struct LocalGroupOptions {
  int tp = 1, pp = 1;
  int ep = 1;  // expert parallelism (MoE): 1, tp (experts over each stage's tp group) or tp x dp (over all)
  int dp = 1;  // data-parallel replicas
  std::vector<int64_t> pp_partition;
  std::vector<int64_t> replicated_experts;  // hot routed experts every ep rank holds (ParallelLayout)
  // Context parallelism: cp = ring_degree x ulysses_degree ranks per tp rank share each step's tokens.
  int cp = 1, ring_degree = 1, ulysses_degree = 1;
  KvCacheOptions kv;
  std::chrono::milliseconds timeout{30000};
  int threads_per_rank = 0;  // 0: share the cores among the ranks
  // Q8_0 / Q4_0: quantize the float linear weights at load (WeightStore::open); Float: as stored.
  WeightFormat quantize = WeightFormat::Float;
};

class LocalGroupExecutor : public ModelExecutor {
 public:
  LocalGroupExecutor(const std::filesystem::path& model_dir, const LocalGroupOptions& options,
                     const std::function<void(int64_t, int64_t)>& on_progress = {});
  ~LocalGroupExecutor() override;

  const ModelConfig& config() const override { return config_; }
  int64_t num_kv_blocks() const override { return num_blocks_; }
  int64_t kv_block_size() const override { return options_.kv.block_size; }
  Tensor execute(const ForwardBatch& batch) override;

  int replica_size() const { return options_.tp * options_.cp * options_.pp; }
  int world_size() const { return replica_size() * options_.dp; }
  // Per rank: weight bytes held, seconds in tp collectives, seconds in pipeline transfers.
  struct RankStats {
    int rank;
    size_t weight_bytes, kv_cache_bytes;
    double collective_seconds, transfer_seconds;
    CommunicatorTpOps::AllToAllStats all_to_all;        // the expert-parallel dispatch (part of the collectives)
    CommunicatorTpOps::AllToAllStats context_parallel;  // ring and ulysses exchanges (part of the collectives)
  };
  std::vector<RankStats> rank_stats() const;
  void reset_counters();
  // Mixture of experts: tokens routed to each expert per model layer ([layer][expert]), since load
  // or reset_counters(); empty for dense models.
  std::vector<std::vector<int64_t>> expert_load() const;
  // Bytes one decode step streams from memory, summed over the ranks.
  size_t decode_bytes_per_step() const;

 private:
  void rank_main(int rank, const std::vector<int>& rendezvous_ports, const std::string& job, uint64_t run_nonce);
  void stop();  // ends and joins the rank threads
  // Runs one step on every rank — `whole` (dp 1) or each replica its part — and returns each
  // replica's logits.
  std::vector<Tensor> step(std::vector<ForwardBatch> parts, const ForwardBatch* whole);

  ModelConfig config_;
  WeightStore weights_;
  LocalGroupOptions options_;
  int64_t num_blocks_ = 0;
  std::function<void(int64_t, int64_t)> on_progress_;

  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<BuiltRank>> ranks_;  // index: global rank
  int ready_ = 0;
  std::exception_ptr startup_error_;
  // The current job: generation number, the batch, and each rank's completion.
  uint64_t job_ = 0;
  const ForwardBatch* batch_ = nullptr;                      // dp 1: the caller's batch, for the step
  std::vector<ForwardBatch> batches_;                        // dp > 1: each replica's part of it
  std::unordered_map<int32_t, int> replica_of_first_block_;  // dp > 1: where each sequence's KV lives
  int done_ = 0;
  std::vector<Tensor> logits_;  // per replica
  std::exception_ptr step_error_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace troupe
