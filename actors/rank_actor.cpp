#include "actors/rank_actor.hpp"

#include <chrono>
#include <map>
#include <memory>

#include "actors/messages.hpp"
#include "actors/rank_worker.hpp"
#include "comm/shm_communicator.hpp"
#include "comm/ucx_communicator.hpp"
#include "kernels/error.hpp"
#include "kernels/sampling.hpp"
#include "kernels/thread_pool.hpp"
#include "sched/local_model_executor.hpp"

namespace troupe {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct RankState {
  RankActorConfig config;
  std::string run_id;
  ModelConfig model;
  WeightStore weights;
  std::unique_ptr<ThreadPool> pool;
  std::shared_ptr<DeviceCommunicator> tp_comm;
  std::unique_ptr<UcxP2PTransport> transport;
  std::unique_ptr<RankWorker> worker;
  std::map<int64_t, Sampler> samplers;
  std::string failure;  // set when startup failed: every step answers with it
};

// An address exchange through the coordinator (blocking: this actor runs on its own thread).
Bootstrap coordinator_bootstrap(caf::actor_system& system, CoordinatorHandle coordinator, std::string exchange,
                                int rank, int size, std::chrono::milliseconds timeout) {
  return [&system, coordinator, exchange, rank, size, timeout](const std::string& mine) {
    caf::scoped_actor self{system};
    std::vector<std::string> blobs;
    self->request(coordinator, timeout, bootstrap_atom::value, BootstrapBlob{exchange, rank, size, mine})
        .receive([&](BootstrapBlobs& all) { blobs = std::move(all.blobs); },
                 [&](caf::error& e) {
                   fail("address exchange '{}' (rank {} of {}): the coordinator did not complete it within {} ms ({})",
                        exchange, rank, size, timeout.count(), system.render(e));
                 });
    return blobs;
  };
}

// Nodes of the tp group of `rank` live on one host? Then shared memory serves; else UCX.
bool tp_group_on_one_host(const ClusterConfig& c, int rank) {
  const int base = rank - rank % c.tp;
  std::string host;
  for (int r = base; r < base + c.tp; ++r) {
    int next = 0;
    for (const auto& n : c.nodes) {
      if (r >= next && r < next + n.ranks) {
        if (host.empty())
          host = n.host;
        else if (host != n.host)
          return false;
      }
      next += n.ranks;
    }
  }
  return true;
}

void start_rank(RankHandle::pointer self, RankState& s) {
  const ClusterConfig& c = s.config.cluster;
  const int rank = s.config.global_rank;
  RankPlacement placement = place_rank(rank, c.tp, c.pp, c.pp_partition, c.ep);
  const int dp_rank = rank / (c.tp * c.pp);
  s.model = ModelConfig::load(c.model_path);
  validate_layout(s.model, c.tp, c.pp, c.pp_partition, c.ep);
  if (!c.simulation.enabled) s.weights = WeightStore::open(c.model_path);
  const int cores = ThreadPool::default_thread_count();
  int local_ranks = 0;
  for (const auto& n : c.nodes)
    if (n.host == c.nodes[0].host) local_ranks += n.ranks;
  s.pool = std::make_unique<ThreadPool>(std::max(1, cores / std::max(1, local_ranks)));
  ScopedThreadPool scope(*s.pool);
  if (c.tp > 1) {
    const std::string group = fmt::format("tp-{}-{}", dp_rank, placement.layout.pp_rank);
    CommGroupInfo info{"tp", placement.layout.tp_rank, c.tp, c.collective_timeout};
    if (tp_group_on_one_host(c, rank)) {
      ShmOptions shm;
      shm.info = info;
      shm.segment = fmt::format("troupe-{}-{}", s.run_id, group);
      s.tp_comm = std::make_shared<ShmCommunicator>(shm);
    } else {
      UcxOptions ucx;
      ucx.info = info;
      s.tp_comm = std::make_shared<UcxCommunicator>(
          ucx, coordinator_bootstrap(self->system(), s.config.coordinator, group, placement.layout.tp_rank, c.tp,
                                     c.startup_timeout));
    }
  }
  if (c.pp > 1) {
    P2POptions p2p{"pp", rank, c.world_size(), c.collective_timeout};
    p2p.thread_safe = true;  // RankWorker sends from its sender thread
    s.transport = std::make_unique<UcxP2PTransport>(
        p2p,
        coordinator_bootstrap(self->system(), s.config.coordinator, "pp", rank, c.world_size(), c.startup_timeout));
  }
  if (c.simulation.enabled) {
    auto counts = stage_layer_counts(s.model.num_hidden_layers, c.pp, c.pp_partition);
    SimulatedStage sim{c.simulation.fixed_ms, c.simulation.per_token_ms, c.simulation.busy_wait,
                       double(counts[size_t(placement.layout.pp_rank)]) / double(s.model.num_hidden_layers)};
    s.worker = std::make_unique<RankWorker>(s.model, placement, sim, s.transport.get());
    return;
  }
  int64_t blocks = cluster_kv_blocks(c, s.model);
  auto coordinator = s.config.coordinator;
  s.worker = std::make_unique<RankWorker>(
      s.model, s.weights, placement, blocks, c.block_size, s.tp_comm, s.transport.get(),
      [self, coordinator, rank](int64_t done, int64_t total) {
        self->send(coordinator, progress_atom::value, RankStatus{rank, done, total, false, "", 0});
      });
}

StepResult run_step(RankState& s, const StepRequest& req) {
  StepResult result;
  result.micro_batch = req.micro_batch;
  result.rank = s.config.global_rank;
  result.start_time = now_seconds();
  if (!s.failure.empty()) {
    result.error = s.failure;
    return result;
  }
  try {
    ScopedThreadPool scope(*s.pool);
    for (int64_t id : req.released_sequences) s.samplers.erase(id);
    s.worker->reset_counters();
    Tensor logits = s.worker->step(req.batch);
    const auto& layout = s.worker->placement().layout;
    if (layout.last_stage() && layout.tp_rank == 0) {
      for (size_t r = 0; r < req.sample_sequences.size() && s.worker->simulated(); ++r)  // any non-eos token will do
        result.sampled.push_back(int32_t(
            3 + (req.sample_sequences[r] * 31 + req.batch.attention.positions[size_t(req.batch.logit_rows[r])]) %
                    (s.model.vocab_size - 3)));
      for (size_t r = 0; r < req.sample_sequences.size() && !s.worker->simulated(); ++r) {
        auto it = s.samplers.find(req.sample_sequences[r]);
        if (it == s.samplers.end()) it = s.samplers.emplace(req.sample_sequences[r], Sampler(req.sampling[r])).first;
        result.sampled.push_back(it->second.sample(logits.data<float>() + int64_t(r) * logits.size(1), logits.size(1)));
      }
    }
    result.collective_seconds = s.worker->seconds_in_collectives();
    result.transfer_seconds = s.worker->seconds_in_transfers();
    result.recv_seconds = s.worker->seconds_receiving();
  } catch (const std::exception& e) {
    result.error = fmt::format("rank {}: {}", s.config.global_rank, e.what());
  }
  result.end_time = now_seconds();
  result.compute_seconds = result.end_time - result.start_time - result.transfer_seconds;
  return result;
}

}  // namespace

int64_t cluster_kv_blocks(const ClusterConfig& c, const ModelConfig& model) {
  int64_t most_layers = 0;
  for (auto n : stage_layer_counts(model.num_hidden_layers, c.pp, c.pp_partition))
    most_layers = std::max(most_layers, n);
  auto [kv_b, kv_e] = kv_head_range(model.num_key_value_heads, c.tp, 0);
  return kv_blocks_for(KvCacheOptions{c.block_size, c.num_kv_blocks, c.kv_cache_bytes}, model, most_layers,
                       kv_e - kv_b);
}

RankHandle::behavior_type rank_actor(RankHandle::pointer self, RankActorConfig config) {
  auto state = std::make_shared<RankState>();
  state->config = std::move(config);
  return {
      [self, state](start_atom, const std::string& run_id) {
        state->run_id = run_id;
        RankStatus status{state->config.global_rank, 0, 0, false, "", 0};
        try {
          start_rank(self, *state);
          status.ready = true;
          status.weight_bytes = int64_t(state->worker->weight_bytes());
        } catch (const std::exception& e) {
          state->failure = fmt::format("rank {} failed to start: {}", state->config.global_rank, e.what());
          status.error = state->failure;
        }
        self->send(state->config.coordinator, loaded_atom::value, status);
      },
      [self, state](step_atom, const StepRequest& req) {
        self->send(state->config.coordinator, step_done_atom::value, run_step(*state, req));
      },
  };
}

}  // namespace troupe
