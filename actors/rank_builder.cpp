#include "actors/rank_builder.hpp"

#include <algorithm>

#include "comm/group_factory.hpp"
#include "kernels/error.hpp"

namespace troupe {

RankTopology rank_topology(const ParallelShape& shape, int rank) {
  const RankGenerator gen(shape.tp, 1, shape.pp, 1, shape.dp, shape.order);
  int local_rank = 0;  // index among the ranks on its own host
  for (int r = 0; r < rank; ++r) local_rank += shape.same_host(r, rank);
  RankTopology t{GroupCoordinator("tp", gen.get_ranks("tp"), rank, local_rank),
                 GroupCoordinator("pp", gen.get_ranks("pp"), rank, local_rank),
                 GroupCoordinator("dp", gen.get_ranks("dp"), rank, local_rank),
                 {0, shape.tp, 0, shape.pp, shape.ep, shape.pp_partition, shape.replicated_experts}};
  t.layout.tp_rank = t.tp.rank_in_group();
  t.layout.pp_rank = t.pp.rank_in_group();
  return t;
}

BuiltRank build_rank(const RankSpec& spec) {
  const ParallelShape& shape = spec.shape;
  const int rank = spec.rank;
  validate_layout(spec.model, shape.tp, shape.pp, shape.pp_partition, shape.ep);
  const bool real = spec.stage == "model";
  const WeightStore weights = real && !spec.weights ? WeightStore::open(spec.model_dir) : WeightStore();
  int threads = spec.threads, on_host = 0;
  for (int r = 0; r < shape.world_size(); ++r) on_host += shape.same_host(r, rank);
  if (threads <= 0) threads = std::max(1, ThreadPool::default_thread_count() / on_host);
  BuiltRank b{std::make_unique<ThreadPool>(threads), rank_topology(shape, rank), nullptr, nullptr, nullptr};
  ScopedThreadPool scope(*b.pool);
  GroupCoordinator& tp = b.topology.tp;
  if (tp.world_size() > 1) {
    const RankGroups groups = RankGenerator(shape.tp, 1, shape.pp, 1, shape.dp, shape.order).get_ranks("tp");
    const bool one_host =
        std::all_of(tp.ranks().begin(), tp.ranks().end(), [&](int r) { return shape.same_host(r, rank); });
    const Bootstrap bootstrap =
        one_host ? Bootstrap()
                 : spec.bootstrap(fmt::format("tp-{}", tp.first_rank()), tp.rank_in_group(), tp.world_size());
    tp = one_host ? make_shm_group(spec.job, "tp", groups, rank, tp.local_rank(), spec.timeout)
                  : make_ucx_group("tp", groups, rank, tp.local_rank(), bootstrap, spec.timeout, spec.ucx);
  }
  // The pipeline transport spans this rank's replica only ("pp-R": the tp x pp ranks of data-parallel
  // replica R, consecutive in the tp-pp-dp order), so a replica can be formed again alone; its
  // members are addressed by their index in the replica.
  const int replica_size = shape.tp * shape.pp, replica_base = rank / replica_size * replica_size;
  if (shape.pp > 1) {
    P2POptions p2p{"pp", rank - replica_base, replica_size,
                   spec.pipeline_timeout.count() > 0 ? spec.pipeline_timeout : spec.timeout};
    p2p.thread_safe = true;  // RankWorker sends from its sender thread
    p2p.resources = spec.ucx;
    p2p.run_nonce = spec.run_nonce;
    b.transport = std::make_unique<UcxP2PTransport>(
        p2p, spec.bootstrap(fmt::format("pp-{}", rank / replica_size), rank - replica_base, replica_size));
  }
  const ParallelLayout& layout = b.topology.layout;
  std::unique_ptr<StageCompute> compute;
  if (real) {
    if (!spec.stage_options.empty())
      fail("[experiment] {} is not an option of stage \"model\"", spec.stage_options.begin()->first);
    auto stage =
        std::make_unique<ModelStage>(spec.model, spec.weights ? *spec.weights : weights, layout,
                                     kv_blocks_for(spec.kv, spec.model, shape.tp, shape.pp, shape.pp_partition),
                                     spec.kv.block_size, tp.shared_communicator(), spec.on_progress);
    b.model_stage = stage.get();
    compute = std::move(stage);
  } else {
    auto kind = stage_compute_kinds().find(spec.stage);
    if (kind == stage_compute_kinds().end()) fail("[experiment] stage = '{}' is not a known stage kind", spec.stage);
    compute = kind->second(spec.model, layout, spec.stage_options);
  }
  auto in_replica = [replica_base](int global) { return global < 0 ? -1 : global - replica_base; };
  b.worker = std::make_unique<RankWorker>(std::move(compute), layout, in_replica(b.topology.prev_stage_rank()),
                                          in_replica(b.topology.next_stage_rank()), b.transport.get());
  return b;
}

}  // namespace troupe
