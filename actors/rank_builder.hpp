#pragma once
// build_rank: the one place a device rank is put together, for the threaded LocalGroupExecutor
// (`troupe generate`) and the per-process RankActor (`troupe cluster`) alike: its thread pool, its
// RankTopology, its tp communicator (shared memory when the whole tp group is on this rank's host,
// else UCX), the pipeline transport (UCX), its stage (ModelStage, or a registered StageCompute
// kind) and the RankWorker that steps it, with a KV cache of kv_blocks_for() blocks.
//
// RankTopology is where a rank sits, from one source as vLLM's parallel_state builds it:
// RankGenerator's groups over the cluster's shape in its `order`, one GroupCoordinator per group
// the runtime serves — tp (also the expert-parallel group when ep is 1 or tp), pp (the stage
// neighbours are its prev/next rank), dp (the replica index is the position in it) and, under context
// parallelism, the cp group split into its ring and ulysses sub-groups (split_sequence_parallel,
// ulysses-low: ulysses groups are contiguous runs of the cp group), and under wide expert
// parallelism (ep = tp x dp) the expert group: a stage's tp ranks of every replica.
#include <chrono>
#include <filesystem>

#include "actors/rank_worker.hpp"
#include "comm/group_coordinator.hpp"
#include "kernels/thread_pool.hpp"
#include "sched/local_model_executor.hpp"

namespace troupe {

struct ParallelShape {
  int tp = 1, pp = 1, dp = 1;
  int ep = 1;  // expert parallelism (MoE): 1, tp (over each tp group) or tp x dp (over every replica's)
  std::string order = "tp-pp-dp";
  std::vector<int64_t> pp_partition{};        // layers per stage; empty = even
  std::vector<int64_t> replicated_experts{};  // hot routed experts every ep rank holds (ParallelLayout)
  std::vector<std::string> hosts{};           // host of each global rank; empty: all on one host
  // Context parallelism: cp = ring_degree x ulysses_degree ranks per tp rank share each step's tokens;
  // cp varies right after tp ("tp-cp-pp-dp": a replica is tp * cp * pp consecutive ranks).
  int cp = 1, ring_degree = 1, ulysses_degree = 1;

  int replica_size() const { return tp * cp * pp; }
  int world_size() const { return replica_size() * dp; }
  bool same_host(int a, int b) const { return hosts.empty() || hosts.at(size_t(a)) == hosts.at(size_t(b)); }
};

struct RankTopology {
  GroupCoordinator tp, pp, dp;
  GroupCoordinator ring, ulysses;  // context parallelism's sub-groups (size 1 without it)
  GroupCoordinator ep;             // the wide expert group (tp x dp ranks of a stage); size 1 unless ep > tp
  ParallelLayout layout;           // this rank's tp and pp coordinates, partition and ep

  int prev_stage_rank() const { return pp.is_first_rank() ? -1 : pp.prev_rank(); }  // -1: first stage
  int next_stage_rank() const { return pp.is_last_rank() ? -1 : pp.next_rank(); }   // -1: last stage
};

// Placement from RankGenerator over (tp, cp, pp, dp) in shape.order (cp inserted after tp); no
// communicators attached.
RankTopology rank_topology(const ParallelShape& shape, int rank);

// The address exchange `exchange` among `size` members, this rank being member `index`.
using BootstrapFactory = std::function<Bootstrap(const std::string& exchange, int index, int size)>;

struct RankSpec {
  ParallelShape shape{};
  int rank = 0;
  ModelConfig model{};
  std::filesystem::path model_dir{};
  const WeightStore* weights = nullptr;         // borrowed for the build; null: opened from model_dir if needed
  WeightFormat quantize = WeightFormat::Float;  // for a WeightStore opened here (ClusterConfig::quantize)
  std::string stage = "model";                  // StageCompute kind, and its options (ClusterConfig::stage)
  std::map<std::string, std::string> stage_options{};
  KvCacheOptions kv{};
  int threads = 0;         // thread pool size; 0: the cores shared among the ranks on this rank's host
  std::string job{};       // names this run's shared-memory segments
  UcxResources ucx{};      // transports and devices the rank's UCX workers may use
  uint64_t run_nonce = 0;  // carried by every pipeline message of this run (P2POptions::run_nonce)
  BootstrapFactory bootstrap{};
  std::chrono::milliseconds timeout{30000};  // collectives and transfers
  // A pipeline receive waits for the upstream stages' compute too: its own bound (0: `timeout`).
  std::chrono::milliseconds pipeline_timeout{0};
  std::function<void(int64_t, int64_t)> on_progress{};  // weight loading (layers done, total)
};

// One built rank, destroyed in reverse order: the worker before the transport and communicators.
struct BuiltRank {
  std::unique_ptr<ThreadPool> pool;
  RankTopology topology;                       // the tp coordinator holds the tp communicator
  std::unique_ptr<UcxP2PTransport> transport;  // null when pp == 1
  ModelStage* model_stage = nullptr;           // the worker's compute when the kind is "model" (borrowed)
  std::unique_ptr<RankWorker> worker;
};

// Blocks until the rank's groups are connected (their members build together); throws troupe::Error.
BuiltRank build_rank(const RankSpec& spec);

}  // namespace troupe
