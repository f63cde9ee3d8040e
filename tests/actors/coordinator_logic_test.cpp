// The coordinator's logic without an actor system: ClusterMembership (membership and health) and
// ReplicaDispatcher (requests over replicas, micro-batches answered by every rank).
#include <doctest/doctest.h>

#include "actors/cluster_membership.hpp"
#include "actors/replica_dispatcher.hpp"
#include "kernels/error.hpp"

using namespace troupe;
using namespace std::chrono_literals;

namespace {

// Two nodes of two ranks each: tp 2 x pp 2 (or tp 2 x dp 2).
ClusterConfig two_nodes(int pp, int dp) {
  ClusterConfig c;
  c.name = "lab";
  c.secret = "s3cret";
  c.tp = 2, c.pp = pp, c.dp = dp;
  c.nodes = {NodeSpec{"a", "127.0.0.1", 2, {}}, NodeSpec{"b", "127.0.0.1", 2, {}}};
  c.heartbeat_timeout = 3000ms;
  c.num_kv_blocks = 64;
  return c;
}

ModelConfig tiny_model() {
  ModelConfig m;
  m.vocab_size = 100;
  m.max_position_embeddings = 64;
  m.num_hidden_layers = 2;
  m.eos_token_ids = {2};
  return m;
}

GenerationRequest request(int64_t max_tokens) { return GenerationRequest{{5, 6, 7}, max_tokens, {}, {}, false}; }

StepResult answer(const StepRequest& step, int rank, std::vector<int32_t> sampled = {}) {
  StepResult r;
  r.micro_batch = step.micro_batch;
  r.rank = rank;
  r.sampled = std::move(sampled);
  return r;
}

}  // namespace

TEST_CASE("membership: joins are checked, the cluster loads, then serves") {
  ClusterMembership m(two_nodes(2, 1));
  const auto now = ClusterMembership::Clock::now();
  CHECK(m.admit("other", "s3cret", "a", {0, 1}, now).find("serves cluster 'lab'") != std::string::npos);
  CHECK(m.admit("lab", "wrong", "a", {0, 1}, now).find("wrong secret") != std::string::npos);
  CHECK(m.admit("lab", "s3cret", "a", {0, 2}, now).find("do not match") != std::string::npos);
  CHECK(m.admit("lab", "s3cret", "nobody", {0, 1}, now) != "");
  CHECK(m.admit("lab", "s3cret", "a", {0, 1}, now) == "");
  CHECK(m.admit("lab", "s3cret", "a", {0, 1}, now).find("already joined") != std::string::npos);
  CHECK(m.state() == ClusterState::Starting);
  CHECK(m.ranks_joined() == 2);
  CHECK(m.admit("lab", "s3cret", "b", {2, 3}, now) == "");
  CHECK(m.state() == ClusterState::Loading);
  CHECK(m.node_of(3) == "b");
  CHECK(m.rank_progress(0, 1, 2) == std::pair<int64_t, int64_t>{1, 2});
  for (int r = 0; r < 3; ++r) CHECK_FALSE(m.rank_ready(r));
  CHECK(m.rank_ready(3));
  CHECK(m.state() == ClusterState::Ready);
  CHECK(std::string(to_string(m.state())) == "ready");
}

TEST_CASE("a cluster state off the wire that names no state prints as unknown") {
  CHECK(std::string(to_string(ClusterState::Degraded)) == "degraded");
  CHECK(std::string(to_string(ClusterState::Recovering)) == "recovering");
  CHECK(std::string(to_string(ClusterState(5))) == "unknown");  // used to index past the names
  CHECK(std::string(to_string(ClusterState(200))) == "unknown");
}

TEST_CASE("membership: a silent node is overdue, and a down node degrades the cluster for good") {
  ClusterMembership m(two_nodes(2, 1));
  const auto t0 = ClusterMembership::Clock::now();
  m.admit("lab", "s3cret", "a", {0, 1}, t0);
  m.admit("lab", "s3cret", "b", {2, 3}, t0);
  m.heartbeat("a", t0 + 2500ms);
  auto late = m.overdue(t0 + 4000ms);
  REQUIRE(late.size() == 1);
  CHECK(late[0].first == "b");
  CHECK(late[0].second.find("no heartbeat for 4000 ms") != std::string::npos);
  std::string reason = m.node_down("b", late[0].second);
  CHECK(reason.find("node 'b' (ranks 2, 3) is down") != std::string::npos);
  CHECK(m.degrade(reason));
  CHECK(m.state() == ClusterState::Degraded);
  CHECK(m.detail() == reason);
  CHECK(m.node_down("b", "again") == "");  // once
  CHECK_FALSE(m.degrade("something else"));
  CHECK(m.detail() == reason);  // the first reason stays
  CHECK(m.live_nodes() == std::vector<std::string>{"a"});
}

TEST_CASE("membership: a restarting node leaves and the cluster recovers when it has joined and loaded again") {
  ClusterMembership m(two_nodes(2, 1));
  const auto t0 = ClusterMembership::Clock::now();
  CHECK(m.admit("lab", "s3cret", "a", {0, 1}, t0) == "");
  m.forget("a");  // before the cluster was ever ready: still starting
  CHECK(m.state() == ClusterState::Starting);
  CHECK(m.admit("lab", "s3cret", "a", {0, 1}, t0) == "");
  CHECK(m.admit("lab", "s3cret", "b", {2, 3}, t0) == "");
  for (int r = 0; r < 4; ++r) m.rank_ready(r);
  REQUIRE(m.state() == ClusterState::Ready);
  CHECK(m.all_ready(0, 4));
  m.forget("b");
  m.forget("nobody");  // not a member: nothing
  CHECK(m.state() == ClusterState::Recovering);
  CHECK(m.absent_nodes() == std::vector<std::string>{"b"});
  CHECK(m.all_ready(0, 2));
  CHECK_FALSE(m.all_ready(0, 4));
  CHECK(m.ranks_joined() == 2);
  CHECK(m.admit("lab", "wrong", "b", {2, 3}, t0).find("wrong secret") != std::string::npos);  // rejoin is checked too
  CHECK(m.admit("lab", "s3cret", "b", {2, 3}, t0) == "");
  CHECK(m.state() == ClusterState::Recovering);  // joined, not loaded
  CHECK_FALSE(m.rank_ready(2));
  CHECK(m.rank_ready(3));  // ready again
  CHECK(m.state() == ClusterState::Ready);
  CHECK(m.degrade("given up"));
  m.forget("a");
  CHECK(m.state() == ClusterState::Degraded);  // for good
}

TEST_CASE("dispatcher: after recompute a replica's requests continue from their tokens and old answers are ignored") {
  ClusterConfig c = two_nodes(1, 1);  // tp 2: ranks 0 and 1; rank 0 samples
  c.nodes = {NodeSpec{"a", "127.0.0.1", 2, {}}};
  ReplicaDispatcher d(tiny_model(), c);
  d.add(7, request(5));
  auto steps = d.schedule(0);
  REQUIRE(steps.size() == 1);
  d.on_step_done(answer(steps[0], 1));
  REQUIRE(d.on_step_done(answer(steps[0], 0, {40})).size() == 1);  // token 40 streamed
  steps = d.schedule(0);
  REQUIRE(steps.size() == 1);
  const StepRequest lost = steps[0];  // in flight when the ranks restart
  d.recompute(0);
  CHECK(d.running() == 1);
  CHECK(d.on_step_done(answer(lost, 1)).empty());  // from before the restart: ignored
  CHECK(d.on_step_done(answer(lost, 0, {99})).empty());
  steps = d.schedule(0);
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].micro_batch > lost.micro_batch);  // ids go on: an old answer cannot match a new step
  CHECK(steps[0].batch.token_ids == std::vector<int32_t>{5, 6, 7, 40});  // prompt + what was streamed
  CHECK(steps[0].batch.attention.positions == std::vector<int32_t>{0, 1, 2, 3});
  CHECK(steps[0].released_sequences.empty());
  d.on_step_done(answer(steps[0], 1));
  auto updates = d.on_step_done(answer(steps[0], 0, {41}));
  REQUIRE(updates.size() == 1);
  CHECK(updates[0].token == 41);
  CHECK_FALSE(updates[0].finished);
}

TEST_CASE("dispatcher: a replica given up hands its requests to a serving one, or fails them") {
  ClusterConfig c = two_nodes(1, 2);  // tp 2 x dp 2: replica 0 = ranks 0-1, replica 1 = ranks 2-3
  ReplicaDispatcher d(tiny_model(), c);
  CHECK(d.add(1, request(4)) == 0);
  CHECK(d.add(2, request(4), {true, false}) == 0);  // replica 1 is not serving
  auto steps = d.schedule(0);
  REQUIRE(steps.size() == 1);
  d.on_step_done(answer(steps[0], 1));
  REQUIRE(d.on_step_done(answer(steps[0], 0, {30, 31})).size() == 2);
  CHECK(d.hand_over(0, {true, true}, "replica 0 is gone").empty());
  CHECK(d.replica_of_request(1) == 1);
  CHECK(d.replica_of_request(2) == 1);
  steps = d.schedule(1);
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].batch.token_ids == std::vector<int32_t>{5, 6, 7, 30, 5, 6, 7, 31});
  auto failed = d.hand_over(1, {false, true}, "both gone");  // no other replica serves
  REQUIRE(failed.size() == 2);
  for (const auto& u : failed) CHECK(u.error == "both gone");
  CHECK(d.running() == 0);
}

TEST_CASE("dispatcher: a micro-batch past its deadline is overdue, naming the ranks that did not answer") {
  ClusterConfig c = two_nodes(2, 1);  // tp 2 x pp 2
  ReplicaDispatcher d(tiny_model(), c);
  const auto t0 = ReplicaDispatcher::Clock::now();
  d.add(7, request(8));
  auto steps = d.schedule(0, t0);
  REQUIRE(steps.size() == 1);
  // No history yet: the first steps get `first_steps` (a first prefill may be long).
  CHECK_FALSE(d.overdue(t0 + 50s, 1000ms, 10, 60s));
  REQUIRE(d.overdue(t0 + 61s, 1000ms, 10, 60s));
  for (int r : {0, 1, 3}) d.on_step_done(answer(steps[0], r), t0 + 30ms);
  d.on_step_done(answer(steps[0], 2, {40}), t0 + 30ms);  // 3 tokens in 30 ms: 10 ms a token
  const auto t1 = t0 + 1s;
  steps = d.schedule(0, t1);
  REQUIRE(steps.size() == 1);  // one decode token: deadline 1 s + 10 x 10 ms = 1.1 s
  d.on_step_done(answer(steps[0], 0), t1);
  d.on_step_done(answer(steps[0], 1), t1);
  CHECK_FALSE(d.overdue(t1 + 1050ms, 1000ms, 10, 60s));
  auto late = d.overdue(t1 + 1200ms, 1000ms, 10, 60s);
  REQUIRE(late);
  CHECK(late->replica == 0);
  CHECK(late->micro_batch == steps[0].micro_batch);
  CHECK(late->deadline_seconds == doctest::Approx(1.1));
  CHECK(late->silent_ranks == std::vector<int>{2, 3});
}

TEST_CASE("dispatcher: a micro-batch completes when every rank of its replica has answered, once") {
  ClusterConfig c = two_nodes(2, 1);  // tp 2 x pp 2: ranks 0-3; rank 2 (last stage, tp 0) samples
  ReplicaDispatcher d(tiny_model(), c);
  CHECK(d.add(7, request(2)) == 0);
  auto steps = d.schedule(0);
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].batch.token_ids == std::vector<int32_t>{5, 6, 7});
  CHECK(steps[0].sample_sequences == std::vector<int64_t>{7});
  CHECK(d.schedule(0).empty());  // the sequence is in flight
  CHECK(d.on_step_done(answer(steps[0], 0)).empty());
  CHECK(d.on_step_done(answer(steps[0], 0)).empty());  // a second answer of rank 0 does not count
  CHECK(d.on_step_done(answer(steps[0], 2, {42})).empty());
  CHECK(d.on_step_done(answer(steps[0], 1)).empty());
  CHECK(d.micro_batches_completed() == 0);
  auto updates = d.on_step_done(answer(steps[0], 3));
  CHECK(d.micro_batches_completed() == 1);
  REQUIRE(updates.size() == 1);
  CHECK(updates[0].request_id == 7);
  CHECK(updates[0].token == 42);
  CHECK_FALSE(updates[0].finished);
  steps = d.schedule(0);
  REQUIRE(steps.size() == 1);
  for (int r : {0, 1, 3}) CHECK(d.on_step_done(answer(steps[0], r)).empty());
  updates = d.on_step_done(answer(steps[0], 2, {43}));
  REQUIRE(updates.size() == 1);
  CHECK(updates[0].finished);
  CHECK(updates[0].reason == FinishReason::Length);
  CHECK(d.running() == 0);
  CHECK(d.finished() == 1);
  d.add(8, request(4));
  steps = d.schedule(0);
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].released_sequences == std::vector<int64_t>{7});  // its sampler can go
}

TEST_CASE("dispatcher: requests spread over replicas, cancel and fail_all end every request") {
  ClusterConfig c = two_nodes(1, 2);  // tp 2 x dp 2: replica 0 = ranks 0-1, replica 1 = ranks 2-3
  ReplicaDispatcher d(tiny_model(), c);
  CHECK(d.add(1, request(8)) == 0);
  CHECK(d.add(2, request(8)) == 1);
  CHECK(d.add(3, request(8)) == 0);
  CHECK(d.replica_of_request(2) == 1);
  CHECK(d.replica_of_rank(3) == 1);
  CHECK_THROWS(d.add(4, GenerationRequest{{}, 8, {}, {}, false}));  // an empty prompt
  auto steps = d.schedule(1);
  REQUIRE(steps.size() == 1);
  CHECK(d.on_step_done(answer(steps[0], 0)).empty());  // rank 0 is not in replica 1
  auto aborted = d.cancel(2);
  REQUIRE(aborted.size() == 1);
  CHECK(aborted[0].reason == FinishReason::Abort);
  CHECK(d.cancel(2).empty());
  CHECK(d.cancel(99).empty());
  auto failed = d.fail_all("node 'b' is down");
  REQUIRE(failed.size() == 2);
  for (const auto& u : failed) {
    CHECK(u.finished);
    CHECK(u.reason == FinishReason::Error);
    CHECK(u.error == "node 'b' is down");
  }
  CHECK(d.running() == 0);
  CHECK(d.finished() == 3);
  CHECK(d.on_step_done(answer(steps[0], 2, {9})).empty());  // from before the reset
  CHECK(d.on_step_done(answer(steps[0], 3)).empty());
}

TEST_CASE("dispatcher: a step answered with a token outside the vocabulary is an error, not a token") {
  ClusterConfig c = two_nodes(2, 1);
  ReplicaDispatcher d(tiny_model(), c);
  d.add(7, request(2));
  auto steps = d.schedule(0);
  REQUIRE(steps.size() == 1);
  for (int r : {0, 1, 3}) CHECK(d.on_step_done(answer(steps[0], r)).empty());
  // The coordinator degrades the cluster with this message (the replica cannot go on).
  CHECK_THROWS_WITH_AS(d.on_step_done(answer(steps[0], 2, {100})),
                       doctest::Contains("sampled token 100, outside the vocabulary of 100"), Error);
}

TEST_CASE("dispatcher: under wide expert parallelism idle replicas step in lockstep with empty micro-batches") {
  ClusterConfig c = two_nodes(1, 2);  // tp 2 x dp 2: replica 0 is ranks 0-1, replica 1 ranks 2-3
  c.ep = 4;                           // the experts over all four
  ReplicaDispatcher d(tiny_model(), c);
  REQUIRE(d.lockstep());
  CHECK(d.schedule_all().empty());  // no work anywhere: no step, not even an empty one
  CHECK(d.add(7, request(2)) == 0);
  auto steps = d.schedule_all();
  REQUIRE(steps.size() == 2);
  REQUIRE(steps[0].size() == 1);
  REQUIRE(steps[1].size() == 1);  // replica 1 has nothing: it gets an empty step to enter the all_to_alls
  CHECK(steps[0][0].batch.num_tokens() == 3);
  CHECK(steps[1][0].batch.num_tokens() == 0);
  CHECK(steps[1][0].batch.attention.block_size == c.block_size);
  CHECK(steps[1][0].micro_batch < 0);
  CHECK(d.dummy_steps() == 1);
  CHECK(d.schedule_all().empty());  // replica 0's sequence is in flight
  CHECK(d.on_step_done(answer(steps[1][0], 2)).empty());
  CHECK(d.on_step_done(answer(steps[1][0], 3)).empty());  // the empty step completes with no update
  CHECK(d.micro_batches_completed() == 1);
  CHECK(d.on_step_done(answer(steps[0][0], 1)).empty());
  auto updates = d.on_step_done(answer(steps[0][0], 0, {42}));
  REQUIRE(updates.size() == 1);
  CHECK(updates[0].token == 42);
  // Both replicas busy: no padding.
  CHECK(d.add(8, request(2)) == 1);
  steps = d.schedule_all();
  REQUIRE(steps.size() == 2);
  CHECK(steps[0].size() == 1);
  CHECK(steps[1].size() == 1);
  CHECK(steps[1][0].batch.num_tokens() == 3);
  CHECK(d.dummy_steps() == 1);
}
