#include "actors/coordinator_actor.hpp"

#include <map>
#include <memory>
#include <random>

#include "actors/cluster_membership.hpp"
#include "actors/replica_dispatcher.hpp"
#include "kernels/error.hpp"

namespace troupe {

namespace {

using Clock = std::chrono::steady_clock;

// An address exchange in progress: every member's blob, and the members waiting for all of them.
struct Exchange {
  std::vector<std::string> blobs;
  std::vector<bool> have;
  std::vector<caf::typed_response_promise<BootstrapBlobs>> promises;
};

// The actor's state: the logic classes, and the handles they do not know about.
struct CoordinatorState {
  CoordinatorState(CoordinatorConfig c)
      : config(std::move(c)),
        membership(config.cluster),
        dispatcher(config.model, config.cluster),
        ranks(size_t(config.cluster.world_size())) {}
  CoordinatorConfig config;
  ClusterMembership membership;
  ReplicaDispatcher dispatcher;
  std::string run_id = fmt::format("{:08x}", std::random_device{}());
  EngineHandle engine;
  std::vector<RankHandle> ranks;
  std::map<std::string, NodeHandle> nodes;
  std::map<std::string, Exchange> exchanges;
  std::vector<StepResult> timeline;
  std::vector<int64_t> rank_steps = std::vector<int64_t>(ranks.size());
  std::vector<double> rank_step_seconds = std::vector<double>(ranks.size());

  void log(const std::string& line) const {
    if (config.log) config.log(line);
  }
};
using Self = CoordinatorHandle::pointer;

void send_updates(Self self, CoordinatorState& s, const std::vector<SequenceUpdate>& updates) {
  if (s.engine)
    for (const auto& u : updates) self->send(s.engine, seq_event_atom::value, u);
}

// Degrades the cluster (once) and fails every unfinished request: none is silently lost.
void degrade(Self self, CoordinatorState& s, const std::string& why) {
  if (!s.membership.degrade(why)) return;
  s.log("cluster degraded: " + why);
  send_updates(self, s, s.dispatcher.fail_all(why));
}

void node_down(Self self, CoordinatorState& s, const std::string& node, const std::string& why) {
  if (std::string reason = s.membership.node_down(node, why); !reason.empty()) degrade(self, s, reason);
}

void pump(Self self, CoordinatorState& s, int replica) {
  const int base = replica * s.dispatcher.ranks_per_replica();
  for (const auto& step : s.dispatcher.schedule(replica))
    for (int r = base; r < base + s.dispatcher.ranks_per_replica(); ++r)
      self->send(s.ranks[size_t(r)], step_atom::value, step);
}

JoinReply on_join(Self self, CoordinatorState& s, const JoinRequest& join) {
  std::string refusal = s.membership.admit(join.cluster, join.secret, join.node, join.ranks, Clock::now());
  if (refusal.empty() && join.rank_actors.size() != join.ranks.size())
    refusal = fmt::format("node '{}' offered ranks that do not match the config", join.node);
  if (!refusal.empty()) return {false, refusal, ""};
  s.nodes[join.node] = join.node_actor;
  self->monitor(join.node_actor);
  for (size_t i = 0; i < join.ranks.size(); ++i) {
    s.ranks[size_t(join.ranks[i])] = join.rank_actors[i];
    self->monitor(join.rank_actors[i]);
  }
  s.log(fmt::format("node '{}' joined from {} (pid {}) with ranks {}-{}", join.node, join.host, join.pid,
                    join.ranks.front(), join.ranks.back()));
  if (s.membership.state() == ClusterState::Loading) s.log("all nodes joined; loading");
  return {true, "", s.run_id};
}

caf::result<BootstrapBlobs> on_bootstrap(Self self, CoordinatorState& s, const BootstrapBlob& blob) {
  auto& ex = s.exchanges[blob.exchange];
  if (ex.blobs.empty()) {
    ex.blobs.resize(size_t(blob.size));
    ex.have.resize(size_t(blob.size));
  }
  if (blob.rank < 0 || blob.rank >= int(ex.blobs.size()))
    return caf::make_error(caf::sec::invalid_argument, "bad bootstrap rank");
  ex.blobs[size_t(blob.rank)] = blob.blob;
  ex.have[size_t(blob.rank)] = true;
  auto promise = self->make_response_promise<BootstrapBlobs>();
  ex.promises.push_back(promise);
  if (std::count(ex.have.begin(), ex.have.end(), true) == int(ex.have.size())) {
    for (auto& p : ex.promises) p.deliver(BootstrapBlobs{ex.blobs});
    s.exchanges.erase(blob.exchange);
  }
  return promise;
}

void on_submit(Self self, CoordinatorState& s, int64_t id, const SubmitRequest& req) {
  const ClusterState state = s.membership.state();
  if (state != ClusterState::Ready) {
    send_updates(self, s,
                 {SequenceUpdate{id, -1, true, FinishReason::Error,
                                 state == ClusterState::Degraded
                                     ? "cluster is degraded: " + s.membership.detail()
                                     : fmt::format("cluster is not ready yet ({})", to_string(state))}});
    return;
  }
  GenerationRequest g{req.prompt_ids, req.max_tokens, SamplingParams{req.temperature, req.top_p, req.top_k, req.seed},
                      req.stop_token_ids, req.ignore_eos};
  int replica = 0;
  try {
    replica = s.dispatcher.add(id, g);
  } catch (const Error& e) {
    send_updates(self, s, {SequenceUpdate{id, -1, true, FinishReason::Error, e.what()}});
    return;
  }
  pump(self, s, replica);
}

void on_step_done(Self self, CoordinatorState& s, StepResult& result) {
  if (s.config.record_timeline || s.config.cluster.record_timeline) s.timeline.push_back(result);
  if (!result.error.empty()) return degrade(self, s, result.error);
  if (result.rank >= 0 && result.rank < int(s.ranks.size())) {
    ++s.rank_steps[size_t(result.rank)];
    s.rank_step_seconds[size_t(result.rank)] += result.end_time - result.start_time;
  }
  auto updates = s.dispatcher.on_step_done(result);
  if (updates.empty()) return;
  send_updates(self, s, updates);
  pump(self, s, s.dispatcher.replica_of_rank(result.rank));
}

ClusterStatus status_of(const CoordinatorState& s) {
  ClusterStatus status;
  status.state = s.membership.state();
  status.detail = s.membership.detail();
  status.ranks_joined = s.membership.ranks_joined();
  status.ranks_ready = s.membership.ranks_ready();
  status.world_size = s.membership.world_size();
  status.waiting = s.dispatcher.waiting();
  status.running = s.dispatcher.running() - status.waiting;  // scheduled, not queued or preempted
  status.finished = s.dispatcher.finished();
  status.preemptions = s.dispatcher.preemptions();
  status.kv_blocks_used = s.dispatcher.kv_blocks_used();
  status.kv_blocks_total = s.dispatcher.kv_blocks_total();
  status.rank_steps = s.rank_steps;
  status.rank_step_seconds = s.rank_step_seconds;
  return status;
}

}  // namespace

CoordinatorHandle::behavior_type coordinator_actor(CoordinatorHandle::pointer self, CoordinatorConfig config) {
  auto s = std::make_shared<CoordinatorState>(std::move(config));
  self->set_down_handler([self, s](caf::down_msg& down) {
    for (const auto& [name, node] : s->nodes) {
      bool match = node.address() == down.source;
      for (int r = 0; r < s->membership.world_size(); ++r)
        match |= s->membership.node_of(r) == name && s->ranks[size_t(r)].address() == down.source;
      if (match) node_down(self, *s, name, "its process or connection is gone");
    }
  });
  self->delayed_send(self, s->config.cluster.heartbeat_interval, tick_atom::value);
  return {
      [self, s](join_atom, const JoinRequest& join) { return on_join(self, *s, join); },
      [self, s](bootstrap_atom, const BootstrapBlob& blob) { return on_bootstrap(self, *s, blob); },
      [self, s](progress_atom, const RankStatus& status) {
        auto [done, total] = s->membership.rank_progress(status.rank, status.done, status.total);
        s->log(fmt::format("loading: rank {} layer {}/{} (all ranks: {}/{} layers)", status.rank, status.done,
                           status.total, done, total));
      },
      [self, s](loaded_atom, const RankStatus& status) {
        if (!status.error.empty()) return degrade(self, *s, status.error);
        const bool now_ready = s->membership.rank_ready(status.rank);
        s->log(fmt::format("rank {} ready ({:.1f} MB of weights), {}/{} ranks ready", status.rank,
                           double(status.weight_bytes) / 1e6, s->membership.ranks_ready(), s->membership.world_size()));
        if (now_ready) s->log("cluster ready");
      },
      [self, s](heartbeat_atom, const std::string& node) { s->membership.heartbeat(node, Clock::now()); },
      [self, s](tick_atom) {
        for (const auto& [node, why] : s->membership.overdue(Clock::now())) node_down(self, *s, node, why);
        self->delayed_send(self, s->config.cluster.heartbeat_interval, tick_atom::value);
      },
      [self, s](engine_atom, const EngineHandle& engine) { s->engine = engine; },
      [self, s](engine_atom) { return s->engine; },
      [self, s](submit_atom, int64_t id, const SubmitRequest& req) { on_submit(self, *s, id, req); },
      [self, s](cancel_atom, int64_t id) {
        const int replica = s->dispatcher.replica_of_request(id);
        if (replica < 0) return;
        send_updates(self, *s, s->dispatcher.cancel(id));
        pump(self, *s, replica);
      },
      [self, s](step_done_atom, StepResult& result) { on_step_done(self, *s, result); },
      [self, s](status_atom) { return status_of(*s); },
      [self, s](timeline_atom) {
        Timeline t{std::move(s->timeline)};
        s->timeline.clear();
        return t;
      },
      [self, s](shutdown_atom) {
        for (const auto& name : s->membership.live_nodes()) self->send(s->nodes[name], shutdown_atom::value);
        self->quit();
      },
  };
}

}  // namespace troupe
