#include "actors/rank_actor.hpp"

#include <cstdio>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>

#include "actors/message_checks.hpp"
#include "actors/messages.hpp"
#include "actors/rank_builder.hpp"
#include "kernels/error.hpp"

namespace troupe {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct RankState {
  RankActorConfig config;
  std::string run_id;
  std::optional<BuiltRank> built;  // the pool, communicators, transport and worker
  RankWorker* worker = nullptr;    // built->worker
  std::string failure;             // set when startup failed: every step answers with it
};

// An address exchange through the coordinator (blocking: this actor runs on its own thread).
Bootstrap coordinator_bootstrap(caf::actor_system& system, CoordinatorHandle coordinator, std::string exchange,
                                int rank, int size, std::chrono::milliseconds timeout) {
  return [&system, coordinator, exchange, rank, size, timeout](const std::string& mine) {
    caf::scoped_actor self{system};
    std::vector<std::string> blobs;
    self->request(coordinator, timeout, bootstrap_atom::value, BootstrapBlob{exchange, rank, size, mine})
        .receive(
            [&](BootstrapBlobs& all) {
              if (all.blobs.size() != size_t(size))
                fail("address exchange '{}': the coordinator answered {} addresses for {} ranks", exchange,
                     all.blobs.size(), size);
              blobs = std::move(all.blobs);
            },
            [&](caf::error& e) {
              fail("address exchange '{}' (rank {} of {}): the coordinator did not complete it within {} ms ({})",
                   exchange, rank, size, timeout.count(), system.render(e));
            });
    return blobs;
  };
}

// The run id the coordinator made (16 hex digits) as the pipeline messages' nonce.
uint64_t run_nonce_of(const std::string& run_id) {
  if (run_id.size() != 16 || run_id.find_first_not_of("0123456789abcdef") != std::string::npos)
    fail("run id '{}' is not 16 hex digits", run_id.substr(0, 32));
  return std::stoull(run_id, nullptr, 16);
}

void start_rank(RankHandle::pointer self, RankState& s) {
  const ClusterConfig& c = s.config.cluster;
  const int rank = s.config.global_rank;
  auto coordinator = s.config.coordinator;
  RankSpec spec{.shape = {c.tp, c.pp, c.dp, c.ep, c.order, c.pp_partition}, .model = ModelConfig::load(c.model_path)};
  spec.shape.cp = c.cp, spec.shape.ring_degree = c.ring_degree, spec.shape.ulysses_degree = c.ulysses_degree;
  spec.rank = rank, spec.model_dir = c.model_path, spec.quantize = parse_weight_format(c.quantize);
  for (const auto& n : c.nodes) spec.shape.hosts.insert(spec.shape.hosts.end(), size_t(n.ranks), n.host);
  spec.stage = c.stage, spec.stage_options = c.stage_options, spec.job = s.run_id, spec.timeout = c.collective_timeout;
  // A hung upstream stage is the coordinator's step deadline to judge (it restarts the replica);
  // the transport's own bound only ends a wait that nobody will ever answer.
  if (c.recovery.enabled) spec.pipeline_timeout = std::max(c.collective_timeout, c.recovery.rejoin_timeout);
  spec.kv = KvCacheOptions{c.block_size, c.num_kv_blocks, c.kv_cache_bytes};
  spec.ucx = c.ucx_resources(rank);
  spec.run_nonce = run_nonce_of(s.run_id);
  spec.bootstrap = [self, coordinator, &c](const std::string& exchange, int index, int size) {
    return coordinator_bootstrap(self->system(), coordinator, exchange, index, size, c.startup_timeout);
  };
  spec.on_progress = [self, coordinator, rank](int64_t done, int64_t total) {
    self->send(coordinator, progress_atom::value, RankStatus{rank, done, total, false, "", 0});
  };
  s.built.emplace(build_rank(spec));
  s.worker = s.built->worker.get();
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
    validate_step_request(req, s.config.cluster.block_size);
    ScopedThreadPool scope(*s.built->pool);
    for (int64_t id : req.released_sequences) s.worker->compute().release(id);
    s.worker->reset_counters();
    Tensor logits = s.worker->step(req.batch);
    const auto& layout = s.worker->layout();
    if (layout.reports_logits())
      for (size_t r = 0; r < req.sample_sequences.size(); ++r)
        result.sampled.push_back(s.worker->compute().sample(
            logits, int64_t(r), req.sample_sequences[r], req.batch.attention.positions[size_t(req.batch.logit_rows[r])],
            req.sampling[r]));
    result.collective_seconds = s.worker->compute().seconds_in_collectives();
    result.transfer_seconds = s.worker->seconds_in_transfers();
    result.recv_seconds = s.worker->seconds_receiving();
  } catch (const std::exception& e) {
    result.error = fmt::format("rank {}: {}", s.config.global_rank, e.what());
  }
  result.end_time = now_seconds();
  result.compute_seconds = result.end_time - result.start_time - result.transfer_seconds;
  return result;
}

// A rank takes `start` from its node (its own process) and steps from the coordinator only;
// anything else is dropped and logged.
void refused(RankHandle::pointer self, const char* what, const char* why) {
  const auto& sender = self->current_sender();
  std::fprintf(stderr, "[rank actor] refused %s from %s: %s\n", what,
               sender ? caf::to_string(sender->node()).c_str() : "an anonymous sender", why);
}
bool from_own_process(RankHandle::pointer self, const char* what) {
  const auto& sender = self->current_sender();
  if (sender && sender->node() == self->node()) return true;
  refused(self, what, "only this process's node starts its ranks");
  return false;
}

}  // namespace

RankHandle::behavior_type rank_actor(RankHandle::pointer self, RankActorConfig config) {
  auto state = std::make_shared<RankState>();
  state->config = std::move(config);
  return {
      [self, state](start_atom, const std::string& run_id) {
        if (!from_own_process(self, "start")) return;
        state->run_id = run_id;
        RankStatus status{state->config.global_rank, 0, 0, false, "", 0};
        try {
          start_rank(self, *state);
          status.ready = true;
          status.weight_bytes = int64_t(state->worker->compute().weight_bytes());
        } catch (const std::exception& e) {
          state->failure = fmt::format("rank {} failed to start: {}", state->config.global_rank, e.what());
          status.error = state->failure;
        }
        self->send(state->config.coordinator, loaded_atom::value, status);
      },
      [self, state](step_atom, const StepRequest& req) {
        const auto& sender = self->current_sender();
        if (!sender || sender->address() != state->config.coordinator.address())
          return refused(self, "step", "only the coordinator schedules steps");
        self->send(state->config.coordinator, step_done_atom::value, run_step(*state, req));
      },
  };
}

}  // namespace troupe
