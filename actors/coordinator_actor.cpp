#include "actors/coordinator_actor.hpp"

#include <fmt/ranges.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>

#include "actors/cluster_membership.hpp"
#include "actors/message_checks.hpp"
#include "actors/replica_dispatcher.hpp"
#include "actors/secrets.hpp"
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
  // 64 random bits: names the run's shm segments and is the nonce on every pipeline message.
  std::string run_id = fmt::format("{:016x}", random_nonce());
  EngineHandle engine;
  std::vector<RankHandle> ranks;
  std::map<std::string, NodeHandle> nodes;
  std::map<std::string, Exchange> exchanges;
  std::vector<StepResult> timeline;
  std::vector<int64_t> rank_steps = std::vector<int64_t>(ranks.size());
  std::vector<double> rank_step_seconds = std::vector<double>(ranks.size());
  int64_t refused = 0;  // messages dropped because of who sent them or what they held
  // Recovery: the epoch (recoveries started), when the recent ones started (the budget), per
  // replica since when it waits for its nodes again and whether it was given up, and how long the
  // last recovery took.
  int64_t epoch = 0;
  std::deque<Clock::time_point> recovery_starts;
  std::vector<std::optional<Clock::time_point>> recovering_since =
      std::vector<std::optional<Clock::time_point>>(size_t(config.cluster.dp));
  std::vector<bool> given_up = std::vector<bool>(size_t(config.cluster.dp));
  std::string given_up_detail;
  double last_recovery_seconds = 0;

  int replica_size() const { return config.cluster.replica_size(); }
  // The node of the config that holds each rank (members or not).
  const std::vector<std::string> node_of_rank = [this] {
    std::vector<std::string> out(size_t(config.cluster.world_size()));
    for (const auto& n : config.cluster.nodes)
      for (int r : config.cluster.ranks_of(n.name)) out[size_t(r)] = n.name;
    return out;
  }();
  // A replica serves when every one of its ranks is ready (and it was not given up). In lockstep
  // (the expert group spans the replicas) each serves only when they all do.
  bool serving(int replica) const {
    if (membership.state() == ClusterState::Degraded) return false;
    if (dispatcher.lockstep())
      return std::find(given_up.begin(), given_up.end(), true) == given_up.end() &&
             membership.all_ready(0, config.cluster.world_size());
    return !given_up[size_t(replica)] && membership.all_ready(replica * replica_size(), replica_size());
  }
  std::vector<bool> serving_replicas() const {
    std::vector<bool> out(size_t(config.cluster.dp));
    for (int r = 0; r < config.cluster.dp; ++r) out[size_t(r)] = serving(r);
    return out;
  }

  void log(const std::string& line) const {
    if (config.log) config.log(line);
  }
};
using Self = CoordinatorHandle::pointer;

// Who may speak. join, the engine lookup and status are open (join checks the secret itself);
// every other message is checked against the sender CAF reports. A refused message is dropped,
// counted and logged with the sender's node; the coordinator keeps running.
bool refuse(Self self, CoordinatorState& s, const char* what, const std::string& why) {
  ++s.refused;
  const auto& sender = self->current_sender();
  if (s.refused <= 16 || (s.refused & (s.refused - 1)) == 0)  // the first 16, then powers of two: no log flood
    std::fprintf(stderr, "[coordinator] refused %s from %s: %s (%lld refused so far)\n", what,
                 sender ? caf::to_string(sender->node()).c_str() : "an anonymous sender", why.c_str(),
                 (long long)s.refused);
  return false;
}
template <class Handle>
bool sent_by(Self self, const Handle& expected) {
  const auto& sender = self->current_sender();
  return expected && sender && sender->address() == expected.address();
}
// A rank message: `rank` in range, sent by the actor that joined as that rank. While the rank is
// restarting (no actor joined as it) its old actor's last messages are dropped without a word.
bool from_rank(Self self, CoordinatorState& s, int rank, const char* what) {
  if (rank < 0 || rank >= int(s.ranks.size())) return refuse(self, s, what, fmt::format("no rank {}", rank));
  if (!s.ranks[size_t(rank)]) return false;
  if (!sent_by(self, s.ranks[size_t(rank)])) return refuse(self, s, what, fmt::format("not sent by rank {}", rank));
  return true;
}
// From an actor of the head's own process (the engine, the launcher), never over the network.
bool from_head(Self self, CoordinatorState& s, const char* what) {
  const auto& sender = self->current_sender();
  if (sender && sender->node() == self->node()) return true;
  return refuse(self, s, what, "only the head's process may send it");
}

void send_updates(Self self, CoordinatorState& s, const std::vector<SequenceUpdate>& updates) {
  if (s.engine)
    for (const auto& u : updates) self->send(s.engine, seq_event_atom::value, u);
}

constexpr size_t kMaxReasonBytes = 4096;

// The reason may be a rank's error text: every failed request carries it, so it is bounded.
std::string bounded_reason(const std::string& why) {
  return why.size() <= kMaxReasonBytes ? why : why.substr(0, kMaxReasonBytes) + "...";
}

// Degrades the cluster (once) and fails every unfinished request: none is silently lost.
void degrade(Self self, CoordinatorState& s, const std::string& why_in) {
  const std::string why = bounded_reason(why_in);
  if (!s.membership.degrade(why)) return;
  s.log("cluster degraded: " + why);
  for (auto& since : s.recovering_since) since.reset();
  send_updates(self, s, s.dispatcher.fail_all(why));
}

void pump(Self self, CoordinatorState& s, int replica);

// A failure of `failed` nodes: recover (restart the nodes of every replica they hold ranks of; the
// requests of those replicas go on, recomputed, on a serving replica, or wait for theirs), or
// degrade when recovery is off or its budget is spent. See the header.
void recover(Self self, CoordinatorState& s, const std::vector<std::string>& failed, const std::string& why_in) {
  const std::string why = bounded_reason(why_in);
  if (s.membership.state() == ClusterState::Degraded) return;
  const RecoveryOptions& o = s.config.cluster.recovery;
  if (!o.enabled) return degrade(self, s, why);
  const auto now = Clock::now();
  while (!s.recovery_starts.empty() && now - s.recovery_starts.front() > o.restart_period)
    s.recovery_starts.pop_front();
  if (int(s.recovery_starts.size()) >= o.max_recoveries)
    return degrade(self, s,
                   fmt::format("{} (the cluster already recovered {} times within {} ms: giving up)", why,
                               s.recovery_starts.size(), o.restart_period.count()));
  s.recovery_starts.push_back(now);
  // The replicas hit, and every node holding a rank of one of them (a node may span replicas).
  std::set<std::string> nodes(failed.begin(), failed.end());
  std::set<int> replicas;
  if (s.dispatcher.lockstep())  // the expert group spans every replica: they are formed again together
    for (int r = 0; r < s.dispatcher.num_replicas(); ++r) replicas.insert(r);
  for (size_t before = 0; before != nodes.size() + replicas.size();) {
    before = nodes.size() + replicas.size();
    for (const auto& node : nodes)
      for (int r : s.config.cluster.ranks_of(node)) replicas.insert(r / s.replica_size());
    for (int replica : replicas)
      for (int r = replica * s.replica_size(); r < (replica + 1) * s.replica_size(); ++r)
        nodes.insert(s.node_of_rank[size_t(r)]);
  }
  ++s.epoch;
  s.run_id = fmt::format("{:016x}", random_nonce());  // the new incarnation's shm names and pipeline nonce
  s.log(fmt::format("recovering (epoch {}): {}; restarting node(s) {} (replica(s) {})", s.epoch, why,
                    fmt::join(nodes, ", "), fmt::join(replicas, ", ")));
  if (s.config.on_node_lost)
    for (const auto& node : failed) s.config.on_node_lost(node);
  for (const auto& name : nodes) {
    if (auto it = s.nodes.find(name); it != s.nodes.end()) {
      self->demonitor(it->second.address());
      self->send(it->second, restart_atom::value, s.epoch);
      s.nodes.erase(it);
    }
    for (int r : s.config.cluster.ranks_of(name)) {
      if (s.ranks[size_t(r)]) self->demonitor(s.ranks[size_t(r)].address());
      s.ranks[size_t(r)] = nullptr;
    }
    s.membership.forget(name);
  }
  for (int replica : replicas) {
    const int first = replica * s.replica_size();
    s.exchanges.erase(fmt::format("pp-{}", replica));
    for (int f = first; f < first + s.replica_size(); ++f)
      for (const char* group : {"tp", "ring", "ulysses", "ep"}) s.exchanges.erase(fmt::format("{}-{}", group, f));
  }
  const std::vector<bool> serving = s.serving_replicas();
  const bool others_serve = std::count(serving.begin(), serving.end(), true) > 0;
  for (int replica : replicas) {
    if (!s.recovering_since[size_t(replica)]) s.recovering_since[size_t(replica)] = now;
    if (!others_serve) {
      s.dispatcher.recompute(replica);  // its requests wait for it
      continue;
    }
    const int64_t moving = s.dispatcher.replica_live(replica);
    send_updates(self, s, s.dispatcher.hand_over(replica, serving, why));
    if (moving > 0)
      s.log(fmt::format("replica {}'s {} live requests go on, recomputed, on the serving replicas", replica, moving));
  }
  for (int r = 0; r < s.dispatcher.num_replicas(); ++r) pump(self, s, r);
}

void node_down(Self self, CoordinatorState& s, const std::string& node, const std::string& why) {
  if (std::string reason = s.membership.node_down(node, why); !reason.empty()) recover(self, s, {node}, reason);
}

void pump(Self self, CoordinatorState& s, int replica) {
  if (!s.serving(replica)) return;  // recovering: its requests wait
  if (s.dispatcher.lockstep()) {    // every replica steps together (the replica asked for is one of them)
    const auto steps = s.dispatcher.schedule_all();
    for (size_t r = 0; r < steps.size(); ++r)
      for (const auto& step : steps[r])
        for (int k = 0; k < s.dispatcher.ranks_per_replica(); ++k)
          self->send(s.ranks[r * size_t(s.dispatcher.ranks_per_replica()) + size_t(k)], step_atom::value, step);
    return;
  }
  const int base = replica * s.dispatcher.ranks_per_replica();
  for (const auto& step : s.dispatcher.schedule(replica))
    for (int r = base; r < base + s.dispatcher.ranks_per_replica(); ++r)
      self->send(s.ranks[size_t(r)], step_atom::value, step);
}

JoinReply on_join(Self self, CoordinatorState& s, const JoinRequest& join) {
  if (std::string bad = join_problem(join, s.ranks.size()); !bad.empty()) {
    refuse(self, s, "join", bad);
    return {false, "join request out of bounds: " + bad, ""};
  }
  std::string refusal = s.membership.admit(join.cluster, join.secret, join.node, join.ranks, Clock::now());
  if (!refusal.empty()) return {false, refusal, ""};
  s.nodes[join.node] = join.node_actor;
  self->monitor(join.node_actor);
  for (size_t i = 0; i < join.ranks.size(); ++i) {
    s.ranks[size_t(join.ranks[i])] = join.rank_actors[i];
    self->monitor(join.rank_actors[i]);
  }
  s.log(fmt::format("node '{}' {} from {} (pid {}) with ranks {}-{}", join.node,
                    s.epoch > 0 ? fmt::format("joined again (epoch {})", s.epoch) : "joined", join.host, join.pid,
                    join.ranks.front(), join.ranks.back()));
  if (s.membership.absent_nodes().empty()) s.log("all nodes joined; loading");
  return {true, "", s.run_id};
}

// Why a bootstrap message is refused, or "" when it is fine: its fields must fit, it must name a
// member of a known exchange, and come from the process that member rank joined from (the
// exchange runs on a helper actor of the rank's process), once.
std::string bootstrap_refusal(Self self, CoordinatorState& s, const BootstrapBlob& blob) {
  if (std::string bad = bootstrap_problem(blob, s.ranks.size()); !bad.empty()) return bad;
  const int member = bootstrap_exchange_member(s.config.cluster, blob.exchange, blob.rank, blob.size);
  if (member < 0) return fmt::format("no member {} of {} in an exchange '{}'", blob.rank, blob.size, blob.exchange);
  const auto& sender = self->current_sender();
  const RankHandle& owner = s.ranks[size_t(member)];
  if (!sender || !owner || owner.node() != sender->node())
    return fmt::format("not from the process that rank {} joined from", member);
  auto it = s.exchanges.find(blob.exchange);
  if (it != s.exchanges.end() && it->second.have[size_t(blob.rank)])
    return fmt::format("member {} of '{}' already gave its address", blob.rank, blob.exchange);
  return "";
}

caf::result<BootstrapBlobs> on_bootstrap(Self self, CoordinatorState& s, const BootstrapBlob& blob) {
  if (std::string bad = bootstrap_refusal(self, s, blob); !bad.empty()) {
    refuse(self, s, "bootstrap", bad);
    return caf::make_error(caf::sec::invalid_argument, "bootstrap refused: " + bad);
  }
  auto& ex = s.exchanges[blob.exchange];
  if (ex.blobs.empty()) {
    ex.blobs.resize(size_t(blob.size));
    ex.have.resize(size_t(blob.size));
  }
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
  if (state != ClusterState::Ready && state != ClusterState::Recovering) {  // recovering: it waits with the rest
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
    replica = s.dispatcher.add(id, g, s.serving_replicas());
  } catch (const Error& e) {
    send_updates(self, s, {SequenceUpdate{id, -1, true, FinishReason::Error, e.what()}});
    return;
  }
  pump(self, s, replica);
}

void on_step_done(Self self, CoordinatorState& s, StepResult& result) {
  if (!from_rank(self, s, result.rank, "step_done")) return;
  // The rank joined, so its step stays unanswered if this is dropped: the replica cannot go on.
  if (std::string bad = step_result_problem(result, s.ranks.size(), size_t(s.config.cluster.max_num_seqs));
      !bad.empty())
    return degrade(
        self, s,
        fmt::format("rank {} answered micro-batch {} out of bounds: {}", result.rank, result.micro_batch, bad));
  if (s.config.record_timeline || s.config.cluster.record_timeline) s.timeline.push_back(result);
  if (!result.error.empty()) return recover(self, s, {s.membership.node_of(result.rank)}, result.error);
  ++s.rank_steps[size_t(result.rank)];
  s.rank_step_seconds[size_t(result.rank)] += result.end_time - result.start_time;
  std::vector<SequenceUpdate> updates;
  const int64_t completed_before = s.dispatcher.micro_batches_completed();
  try {  // a step answered with tokens that do not fit its micro-batch: the replica cannot go on
    updates = s.dispatcher.on_step_done(result);
  } catch (const Error& e) {
    return degrade(self, s, fmt::format("rank {}: {}", result.rank, e.what()));
  }
  send_updates(self, s, updates);
  // A completed micro-batch frees a pipeline slot, also one that only prefilled (no updates).
  if (s.dispatcher.micro_batches_completed() != completed_before)
    pump(self, s, s.dispatcher.replica_of_rank(result.rank));
}

ClusterStatus status_of(const CoordinatorState& s) {
  ClusterStatus status;
  status.state = s.membership.state();
  status.detail = s.membership.state() == ClusterState::Degraded ? s.membership.detail() : s.given_up_detail;
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
  status.refused_messages = s.refused;
  status.recoveries = s.epoch;
  status.last_recovery_seconds = s.last_recovery_seconds;
  status.dummy_steps = s.dispatcher.dummy_steps();
  return status;
}

}  // namespace

CoordinatorHandle::behavior_type coordinator_actor(CoordinatorHandle::pointer self, CoordinatorConfig config) {
  auto s = std::make_shared<CoordinatorState>(std::move(config));
  self->set_down_handler([self, s](caf::down_msg& down) {
    std::vector<std::string> gone;  // (a recovery clears s->nodes: not while iterating it)
    for (const auto& [name, node] : s->nodes) {
      bool match = node.address() == down.source;
      for (int r = 0; r < s->membership.world_size(); ++r)
        match |= s->membership.node_of(r) == name && s->ranks[size_t(r)].address() == down.source;
      if (match) gone.push_back(name);
    }
    for (const auto& name : gone) node_down(self, *s, name, "its process or connection is gone");
  });
  self->delayed_send(self, s->config.cluster.heartbeat_interval, tick_atom::value);
  return {
      [self, s](join_atom, const JoinRequest& join) { return on_join(self, *s, join); },
      [self, s](bootstrap_atom, const BootstrapBlob& blob) { return on_bootstrap(self, *s, blob); },
      [self, s](progress_atom, const RankStatus& status) {
        if (!from_rank(self, *s, status.rank, "progress")) return;
        if (std::string bad = rank_status_problem(status, s->ranks.size(), s->config.model.num_hidden_layers);
            !bad.empty())
          return (void)refuse(self, *s, "progress", bad);
        auto [done, total] = s->membership.rank_progress(status.rank, status.done, status.total);
        s->log(fmt::format("loading: rank {} layer {}/{} (all ranks: {}/{} layers)", status.rank, status.done,
                           status.total, done, total));
      },
      [self, s](loaded_atom, const RankStatus& status) {
        if (!from_rank(self, *s, status.rank, "loaded")) return;
        if (!status.error.empty()) return recover(self, *s, {s->membership.node_of(status.rank)}, status.error);
        const bool now_ready = s->membership.rank_ready(status.rank);
        s->log(fmt::format("rank {} ready ({:.1f} MB of weights), {}/{} ranks ready", status.rank,
                           double(status.weight_bytes) / 1e6, s->membership.ranks_ready(), s->membership.world_size()));
        const int replica = status.rank / s->replica_size();
        auto& since = s->recovering_since[size_t(replica)];
        if (s->membership.all_ready(replica * s->replica_size(), s->replica_size()) &&
            (since || s->given_up[size_t(replica)])) {
          s->last_recovery_seconds = since ? std::chrono::duration<double>(Clock::now() - *since).count() : 0;
          s->log(fmt::format("replica {} ready again (epoch {}){}", replica, s->epoch,
                             since ? fmt::format(", {:.2f} s after the failure", s->last_recovery_seconds) : ""));
          since.reset();
          s->given_up[size_t(replica)] = false;
          if (std::find(s->given_up.begin(), s->given_up.end(), true) == s->given_up.end()) s->given_up_detail.clear();
        }
        if (now_ready && s->epoch == 0) s->log("cluster ready");
        for (int r = 0; r < s->dispatcher.num_replicas(); ++r) pump(self, *s, r);
      },
      [self, s](heartbeat_atom, const std::string& node) {
        auto it = s->nodes.find(node);
        if (it == s->nodes.end() || !sent_by(self, it->second))
          return (void)refuse(self, *s, "heartbeat", "not sent by a node that joined under that name");
        s->membership.heartbeat(node, Clock::now());
      },
      [self, s](tick_atom) {
        if (!sent_by(self, caf::actor_cast<CoordinatorHandle>(self)))
          return (void)refuse(self, *s, "tick", "only the coordinator ticks");
        const auto now = Clock::now();
        for (const auto& [node, why] : s->membership.overdue(now)) node_down(self, *s, node, why);
        const RecoveryOptions& o = s->config.cluster.recovery;
        for (int replica = 0; replica < s->config.cluster.dp; ++replica) {
          auto& since = s->recovering_since[size_t(replica)];
          if (!since || now - *since <= o.rejoin_timeout) continue;
          std::set<std::string> missing;
          for (int r = replica * s->replica_size(); r < (replica + 1) * s->replica_size(); ++r)
            if (s->membership.node_of(r).empty()) missing.insert(s->node_of_rank[size_t(r)]);
          const std::string why = fmt::format("node(s) {} did not join again within {} ms of the failure",
                                              fmt::join(missing, ", "), o.rejoin_timeout.count());
          since.reset();
          s->given_up[size_t(replica)] = true;
          const std::vector<bool> serving = s->serving_replicas();
          if (std::count(serving.begin(), serving.end(), true) == 0) {
            degrade(self, *s, why);
            break;
          }
          s->given_up_detail = fmt::format("replica {} given up: {}", replica, why);
          s->log(s->given_up_detail + "; the other replicas serve (it comes back when its nodes join)");
          send_updates(self, *s, s->dispatcher.hand_over(replica, serving, why));
          for (int r = 0; r < s->config.cluster.dp; ++r) pump(self, *s, r);
        }
        if (s->membership.state() != ClusterState::Degraded)
          if (auto late = s->dispatcher.overdue(now, o.step_deadline_floor, o.step_deadline_factor, o.rejoin_timeout)) {
            std::set<std::string> silent;
            for (int r : late->silent_ranks) silent.insert(s->membership.node_of(r));
            recover(self, *s, {silent.begin(), silent.end()},
                    fmt::format("micro-batch {} of replica {} unanswered after {:.1f} s (its deadline {:.1f} s) by "
                                "rank(s) {}",
                                late->micro_batch, late->replica, late->waited_seconds, late->deadline_seconds,
                                fmt::join(late->silent_ranks, ", ")));
          }
        self->delayed_send(self, s->config.cluster.heartbeat_interval, tick_atom::value);
      },
      [self, s](engine_atom, const EngineHandle& engine) {
        if (!from_head(self, *s, "engine")) return;
        if (s->engine && s->engine != engine) return (void)refuse(self, *s, "engine", "the engine is set once");
        s->engine = engine;
      },
      [self, s](engine_atom) { return s->engine; },
      [self, s](submit_atom, int64_t id, const SubmitRequest& req) {
        if (!sent_by(self, s->engine)) return (void)refuse(self, *s, "submit", "only the engine submits");
        on_submit(self, *s, id, req);
      },
      [self, s](cancel_atom, int64_t id) {
        if (!sent_by(self, s->engine)) return (void)refuse(self, *s, "cancel", "only the engine cancels");
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
        if (!from_head(self, *s, "shutdown")) return;
        for (const auto& name : s->membership.live_nodes()) self->send(s->nodes[name], shutdown_atom::value);
        self->quit();
      },
  };
}

}  // namespace troupe
