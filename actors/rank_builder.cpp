#include "actors/rank_builder.hpp"

#include <algorithm>

#include "comm/group_factory.hpp"
#include "kernels/error.hpp"

namespace troupe {

namespace {

// RankGenerator over the shape; context parallelism is its sequence-parallel ("sp") dimension,
// placed right after tp unless the order names it.
RankGenerator generator_of(const ParallelShape& shape) {
  std::string order = shape.order;
  if (order.find("cp") == std::string::npos && shape.cp > 1) {
    const size_t tp = order.find("tp");
    order = tp == std::string::npos ? "cp-" + order : order.insert(tp + 2, "-cp");
  }
  if (const size_t at = order.find("cp"); at != std::string::npos) order.replace(at, 2, "sp");
  return RankGenerator(shape.tp, shape.cp, shape.pp, 1, shape.dp, order);
}

// Every ring (or ulysses) sub-group of every cp group.
RankGroups context_parallel_groups(const ParallelShape& shape, bool ring) {
  RankGroups all;
  for (const auto& cp : generator_of(shape).get_ranks("sp")) {
    SequenceParallelGroups split = split_sequence_parallel(cp, shape.ulysses_degree, shape.ring_degree);
    for (auto& g : ring ? split.ring : split.ulysses) all.push_back(std::move(g));
  }
  return all;
}

// The wide expert groups (ep = tp x dp: a stage's tp ranks of every replica, tp fastest); under
// ep <= tp every rank is alone in its own (the tp group serves).
RankGroups expert_groups(const ParallelShape& shape) {
  if (shape.ep > shape.tp) return generator_of(shape).get_ranks("tp-dp");
  RankGroups alone;
  for (int r = 0; r < shape.world_size(); ++r) alone.push_back({r});
  return alone;
}

}  // namespace

RankTopology rank_topology(const ParallelShape& shape, int rank) {
  const RankGenerator gen = generator_of(shape);
  int local_rank = 0;  // index among the ranks on its own host
  for (int r = 0; r < rank; ++r) local_rank += shape.same_host(r, rank);
  RankTopology t{GroupCoordinator("tp", gen.get_ranks("tp"), rank, local_rank),
                 GroupCoordinator("pp", gen.get_ranks("pp"), rank, local_rank),
                 GroupCoordinator("dp", gen.get_ranks("dp"), rank, local_rank),
                 GroupCoordinator("ring", context_parallel_groups(shape, true), rank, local_rank),
                 GroupCoordinator("ulysses", context_parallel_groups(shape, false), rank, local_rank),
                 GroupCoordinator("ep", expert_groups(shape), rank, local_rank),
                 {0, shape.tp, 0, shape.pp, shape.ep, shape.pp_partition, shape.replicated_experts}};
  t.layout.tp_rank = t.tp.rank_in_group();
  t.layout.pp_rank = t.pp.rank_in_group();
  t.layout.cp_size = shape.cp;
  t.layout.ring_degree = shape.ring_degree;
  t.layout.ulysses_degree = shape.ulysses_degree;
  t.layout.ring_rank = t.ring.rank_in_group();
  t.layout.ulysses_rank = t.ulysses.rank_in_group();
  t.layout.ep_rank = shape.ep > shape.tp ? t.ep.rank_in_group() : t.layout.tp_rank;
  return t;
}

BuiltRank build_rank(const RankSpec& spec) {
  const ParallelShape& shape = spec.shape;
  const int rank = spec.rank;
  validate_layout(spec.model, shape.tp, shape.pp, shape.pp_partition, shape.ep, shape.dp);
  if (shape.ep > shape.tp && shape.cp > 1)
    fail("expert parallelism over replicas (ep {} = tp {} x dp {}) does not combine with context parallelism (cp {})",
         shape.ep, shape.tp, shape.dp, shape.cp);
  validate_context_parallel(spec.model, shape.tp, shape.cp, shape.ring_degree, shape.ulysses_degree);
  const bool real = spec.stage == "model";
  const WeightStore weights = real && !spec.weights ? WeightStore::open(spec.model_dir, spec.quantize) : WeightStore();
  int threads = spec.threads, on_host = 0;
  for (int r = 0; r < shape.world_size(); ++r) on_host += shape.same_host(r, rank);
  if (threads <= 0) threads = std::max(1, ThreadPool::default_thread_count() / on_host);
  BuiltRank b{std::make_unique<ThreadPool>(threads), rank_topology(shape, rank), nullptr, nullptr, nullptr};
  ScopedThreadPool scope(*b.pool);
  // A group's communicator: shared memory when the whole group is on this rank's host, else UCX.
  auto connect = [&](GroupCoordinator& group, const RankGroups& groups) {
    if (group.world_size() == 1) return;
    const bool one_host =
        std::all_of(group.ranks().begin(), group.ranks().end(), [&](int r) { return shape.same_host(r, rank); });
    const std::string& name = group.name();
    const Bootstrap bootstrap = one_host ? Bootstrap()
                                         : spec.bootstrap(fmt::format("{}-{}", name, group.first_rank()),
                                                          group.rank_in_group(), group.world_size());
    group = one_host ? make_shm_group(spec.job, name, groups, rank, group.local_rank(), spec.timeout)
                     : make_ucx_group(name, groups, rank, group.local_rank(), bootstrap, spec.timeout, spec.ucx);
  };
  GroupCoordinator& tp = b.topology.tp;
  connect(tp, generator_of(shape).get_ranks("tp"));
  connect(b.topology.ring, context_parallel_groups(shape, true));
  connect(b.topology.ulysses, context_parallel_groups(shape, false));
  connect(b.topology.ep, expert_groups(shape));
  // The pipeline transport spans this rank's replica only ("pp-R": the tp x cp x pp ranks of
  // data-parallel replica R, consecutive in the tp-cp-pp-dp order), so a replica can be formed again
  // alone; its members are addressed by their index in the replica.
  const int replica_size = shape.replica_size(), replica_base = rank / replica_size * replica_size;
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
    auto stage = std::make_unique<ModelStage>(
        spec.model, spec.weights ? *spec.weights : weights, layout,
        kv_blocks_for(spec.kv, spec.model, shape.tp, shape.pp, shape.pp_partition), spec.kv.block_size,
        tp.shared_communicator(), spec.on_progress, b.topology.ring.shared_communicator(),
        b.topology.ulysses.shared_communicator(), b.topology.ep.shared_communicator());
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
