#include "actors/coordinator_actor.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <set>

#include "actors/messages.hpp"
#include "actors/rank_actor.hpp"
#include "kernels/error.hpp"
#include "sched/scheduler.hpp"

namespace troupe {

namespace {

using Clock = std::chrono::steady_clock;

struct RankSlot {
  caf::actor actor;
  std::string node;
  bool ready = false;
  int64_t done = 0, total = 0;
};

struct NodeSlot {
  caf::actor node_actor;
  Clock::time_point last_heartbeat;
  std::vector<int> ranks;
  bool down = false;
};

struct Exchange {
  std::vector<std::string> blobs;
  std::vector<bool> have;
  std::vector<caf::response_promise> promises;
};

struct Replica {
  std::unique_ptr<Scheduler> scheduler;
  std::map<int64_t, MicroBatch> in_flight;
  std::map<int64_t, int> replies;  // micro-batch -> step results received
  std::map<int64_t, std::vector<int32_t>> sampled;
  std::set<int64_t> live;         // request ids not finished
  std::vector<int64_t> released;  // finished since the last step was sent
};

struct CoordinatorState {
  CoordinatorConfig config;
  std::string run_id;
  std::string state = "starting";
  std::string detail;
  caf::actor engine;
  std::vector<RankSlot> ranks;
  std::map<std::string, NodeSlot> nodes;
  std::map<std::string, Exchange> exchanges;
  std::vector<Replica> replicas;
  std::map<int64_t, int> replica_of;
  int64_t finished = 0;
  std::vector<StepResult> timeline;

  void log(const std::string& line) const {
    if (config.log) config.log(line);
  }
  int ranks_per_replica() const { return config.cluster.tp * config.cluster.pp; }
};

int pipeline_depth(const ClusterConfig& c) { return c.micro_batches > 0 ? c.micro_batches : c.pp; }

std::unique_ptr<Scheduler> make_scheduler(const CoordinatorConfig& config) {
  const ClusterConfig& c = config.cluster;
  return std::make_unique<Scheduler>(config.model, cluster_kv_blocks(c, config.model), c.block_size,
                                     SchedulerConfig{c.max_num_seqs, c.max_num_batched_tokens, pipeline_depth(c)});
}

std::string random_run_id() {
  std::random_device rd;
  return fmt::format("{:08x}", rd());
}

StepRequest to_step_request(const MicroBatch& mb, std::vector<int64_t>& released) {
  StepRequest r;
  r.micro_batch = mb.id;
  r.token_ids = mb.batch.token_ids;
  r.positions = mb.batch.attention.positions;
  r.sequence_of_token = mb.batch.attention.sequence_of_token;
  r.block_tables = mb.batch.attention.block_tables;
  r.logit_rows = mb.batch.logit_rows;
  r.block_size = mb.batch.attention.block_size;
  r.sample_sequences = mb.sampled_sequences;
  for (const auto& p : mb.sampling) {
    r.temperature.push_back(p.temperature);
    r.top_p.push_back(p.top_p);
    r.top_k.push_back(p.top_k);
    r.seed.push_back(p.seed);
  }
  r.released_sequences = std::move(released);
  released.clear();
  return r;
}

void send_update(caf::event_based_actor* self, CoordinatorState& s, SequenceUpdate u) {
  if (s.engine) self->send(s.engine, seq_event_atom::value, std::move(u));
}

// Fails every unfinished request (none is silently lost) and resets the schedulers.
void fail_all(caf::event_based_actor* self, CoordinatorState& s, const std::string& why) {
  for (auto& replica : s.replicas) {
    for (int64_t id : replica.live) send_update(self, s, SequenceUpdate{id, -1, true, "error", why});
    s.finished += int64_t(replica.live.size());
    replica.live.clear();
    replica.in_flight.clear();
    replica.replies.clear();
    replica.sampled.clear();
    replica.released.clear();
  }
  for (auto& replica : s.replicas) replica.scheduler = make_scheduler(s.config);
  s.replica_of.clear();
}

void degrade(caf::event_based_actor* self, CoordinatorState& s, const std::string& why) {
  if (s.state == "degraded") return;
  s.state = "degraded";
  s.detail = why;
  s.log("cluster degraded: " + why);
  fail_all(self, s, why);
}

void pump(caf::event_based_actor* self, CoordinatorState& s, size_t replica_index) {
  Replica& replica = s.replicas[replica_index];
  const int base = int(replica_index) * s.ranks_per_replica();
  while (auto mb = replica.scheduler->schedule()) {
    StepRequest request = to_step_request(*mb, replica.released);
    for (int r = base; r < base + s.ranks_per_replica(); ++r)
      self->send(s.ranks[size_t(r)].actor, step_atom::value, request);
    replica.in_flight.emplace(mb->id, std::move(*mb));
  }
}

void node_down(caf::event_based_actor* self, CoordinatorState& s, const std::string& node, const std::string& why) {
  auto it = s.nodes.find(node);
  if (it == s.nodes.end() || it->second.down) return;
  it->second.down = true;
  std::string ranks;
  for (int r : it->second.ranks) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
  degrade(self, s, fmt::format("node '{}' (ranks {}) is down: {}", node, ranks, why));
}

void on_step_done(caf::event_based_actor* self, CoordinatorState& s, StepResult& result) {
  if (s.config.record_timeline || s.config.cluster.record_timeline) s.timeline.push_back(result);
  const size_t replica_index = size_t(result.rank / s.ranks_per_replica());
  if (replica_index >= s.replicas.size()) return;
  Replica& replica = s.replicas[replica_index];
  auto mb = replica.in_flight.find(result.micro_batch);
  if (mb == replica.in_flight.end()) return;  // from before a reset
  if (!result.error.empty()) {
    degrade(self, s, result.error);
    return;
  }
  const auto& c = s.config.cluster;
  const int last_stage_tp0 = int(replica_index) * s.ranks_per_replica() + (c.pp - 1) * c.tp;
  if (result.rank == last_stage_tp0) replica.sampled[result.micro_batch] = result.sampled;
  if (++replica.replies[result.micro_batch] < s.ranks_per_replica()) return;
  auto events = replica.scheduler->complete(mb->second, replica.sampled[result.micro_batch]);
  replica.in_flight.erase(mb);
  replica.replies.erase(result.micro_batch);
  replica.sampled.erase(result.micro_batch);
  for (const auto& e : events) {
    send_update(self, s, SequenceUpdate{e.sequence_id, e.token, e.finished, e.finish_reason, ""});
    if (e.finished) {
      replica.live.erase(e.sequence_id);
      replica.released.push_back(e.sequence_id);
      s.replica_of.erase(e.sequence_id);
      ++s.finished;
    }
  }
  pump(self, s, replica_index);
}

JoinReply on_join(caf::event_based_actor* self, CoordinatorState& s, const JoinRequest& join) {
  const auto& c = s.config.cluster;
  if (join.cluster != c.name)
    return {false, fmt::format("this coordinator serves cluster '{}', not '{}'", c.name, join.cluster), ""};
  if (join.secret != c.secret)
    return {false, fmt::format("node '{}' presented the wrong secret for cluster '{}'", join.node, c.name), ""};
  std::vector<int> expected;
  try {
    expected = c.ranks_of(join.node);
  } catch (const Error& e) {
    return {false, e.what(), ""};
  }
  if (std::vector<int>(join.ranks.begin(), join.ranks.end()) != expected ||
      join.rank_actors.size() != join.ranks.size())
    return {false, fmt::format("node '{}' offered ranks that do not match the config", join.node), ""};
  if (s.nodes.count(join.node)) return {false, fmt::format("node '{}' has already joined", join.node), ""};
  NodeSlot node{join.node_actor, Clock::now(), expected, false};
  self->monitor(join.node_actor);
  for (size_t i = 0; i < expected.size(); ++i) {
    s.ranks[size_t(expected[i])].actor = join.rank_actors[i];
    s.ranks[size_t(expected[i])].node = join.node;
    self->monitor(join.rank_actors[i]);
  }
  s.nodes[join.node] = node;
  s.log(fmt::format("node '{}' joined from {} (pid {}) with ranks {}-{}", join.node, join.host, join.pid,
                    expected.front(), expected.back()));
  if (s.state == "starting" && int(s.nodes.size()) == int(c.nodes.size())) {
    s.state = "loading";
    s.log("all nodes joined; loading");
  }
  return {true, "", s.run_id};
}

}  // namespace

caf::behavior coordinator_actor(caf::event_based_actor* self, CoordinatorConfig config) {
  auto s = std::make_shared<CoordinatorState>();
  s->config = std::move(config);
  s->run_id = random_run_id();
  s->ranks.resize(size_t(s->config.cluster.world_size()));
  const auto& c = s->config.cluster;
  for (int d = 0; d < c.dp; ++d) {
    Replica replica;
    replica.scheduler = make_scheduler(s->config);
    s->replicas.push_back(std::move(replica));
  }
  self->set_down_handler([self, s](caf::down_msg& down) {
    for (auto& [name, node] : s->nodes) {
      bool match = node.node_actor && node.node_actor.address() == down.source;
      for (int r : node.ranks) match |= s->ranks[size_t(r)].actor && s->ranks[size_t(r)].actor.address() == down.source;
      if (match) node_down(self, *s, name, "its process or connection is gone");
    }
  });
  self->delayed_send(self, c.heartbeat_interval, tick_atom::value);
  return {
      [self, s](join_atom, const JoinRequest& join) { return on_join(self, *s, join); },
      [self, s](bootstrap_atom, const BootstrapBlob& blob) -> caf::result<BootstrapBlobs> {
        auto& ex = s->exchanges[blob.exchange];
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
          s->exchanges.erase(blob.exchange);
        }
        return promise;
      },
      [self, s](progress_atom, const RankStatus& status) {
        auto& slot = s->ranks[size_t(status.rank)];
        slot.done = status.done;
        slot.total = status.total;
        int64_t done = 0, total = 0;
        for (const auto& r : s->ranks) done += r.done, total += r.total;
        s->log(fmt::format("loading: rank {} layer {}/{} (all ranks: {}/{} layers)", status.rank, status.done,
                           status.total, done, total));
      },
      [self, s](loaded_atom, const RankStatus& status) {
        if (!status.error.empty()) {
          degrade(self, *s, status.error);
          return;
        }
        s->ranks[size_t(status.rank)].ready = true;
        int ready = 0;
        for (const auto& r : s->ranks) ready += r.ready;
        s->log(fmt::format("rank {} ready ({:.1f} MB of weights), {}/{} ranks ready", status.rank,
                           double(status.weight_bytes) / 1e6, ready, s->ranks.size()));
        if (ready == int(s->ranks.size()) && s->state == "loading") {
          s->state = "ready";
          s->log("cluster ready");
        }
      },
      [self, s](heartbeat_atom, const std::string& node) {
        auto it = s->nodes.find(node);
        if (it != s->nodes.end()) it->second.last_heartbeat = Clock::now();
      },
      [self, s](tick_atom) {
        const auto now = Clock::now();
        for (auto& [name, node] : s->nodes)
          if (!node.down && now - node.last_heartbeat > s->config.cluster.heartbeat_timeout)
            node_down(
                self, *s, name,
                fmt::format("no heartbeat for {} ms (timeout {} ms)",
                            std::chrono::duration_cast<std::chrono::milliseconds>(now - node.last_heartbeat).count(),
                            s->config.cluster.heartbeat_timeout.count()));
        self->delayed_send(self, s->config.cluster.heartbeat_interval, tick_atom::value);
      },
      [self, s](engine_atom, const caf::actor& engine) { s->engine = engine; },
      [self, s](engine_atom) { return s->engine; },
      [self, s](submit_atom, int64_t id, const SubmitRequest& req) {
        if (s->state != "ready") {
          send_update(self, *s,
                      SequenceUpdate{id, -1, true, "error",
                                     s->state == "degraded" ? "cluster is degraded: " + s->detail
                                                            : "cluster is not ready yet (" + s->state + ")"});
          return;
        }
        GenerationRequest g{req.prompt_ids, req.max_tokens,
                            SamplingParams{req.temperature, req.top_p, req.top_k, req.seed}, req.stop_token_ids,
                            req.ignore_eos};
        size_t best = 0;
        for (size_t r = 1; r < s->replicas.size(); ++r)
          if (s->replicas[r].live.size() < s->replicas[best].live.size()) best = r;
        try {
          s->replicas[best].scheduler->add(id, g);
        } catch (const Error& e) {
          send_update(self, *s, SequenceUpdate{id, -1, true, "error", e.what()});
          return;
        }
        s->replicas[best].live.insert(id);
        s->replica_of[id] = int(best);
        pump(self, *s, best);
      },
      [self, s](cancel_atom, int64_t id) {
        auto it = s->replica_of.find(id);
        if (it == s->replica_of.end()) return;
        const size_t index = size_t(it->second);
        s->replica_of.erase(it);
        Replica& replica = s->replicas[index];
        if (replica.scheduler->abort(id)) {
          replica.live.erase(id);
          replica.released.push_back(id);
          ++s->finished;
          send_update(self, *s, SequenceUpdate{id, -1, true, "abort", ""});
        }
        pump(self, *s, index);
      },
      [self, s](step_done_atom, StepResult& result) { on_step_done(self, *s, result); },
      [self, s](status_atom) {
        ClusterStatus st;
        st.state = s->state;
        st.detail = s->detail;
        st.world_size = int(s->ranks.size());
        for (const auto& r : s->ranks) st.ranks_joined += bool(r.actor), st.ranks_ready += r.ready;
        for (const auto& replica : s->replicas) {
          st.preemptions += replica.scheduler->num_preemptions();
          st.running += int64_t(replica.live.size());
        }
        st.finished = s->finished;
        return st;
      },
      [self, s](timeline_atom) {
        Timeline t{std::move(s->timeline)};
        s->timeline.clear();
        return t;
      },
      [self, s](shutdown_atom) {
        for (auto& [name, node] : s->nodes)
          if (!node.down) self->send(node.node_actor, shutdown_atom::value);
        self->quit();
      },
  };
}

}  // namespace troupe
