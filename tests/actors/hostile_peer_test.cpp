// A peer that reaches the coordinator's port but did not join as the rank, node, engine or head
// it claims to be: every message it forges is dropped and counted, the cluster stays ready, and
// honest requests running at the same time return exactly the reference ids. Real processes
// (`troupe cluster` on loopback); the hostile peer is a second CAF node in this test process.
#include <doctest/doctest.h>

#include <condition_variable>
#include <mutex>

#include "actors/client.hpp"
#include "actors/messages.hpp"
#include "bench/cluster_process.hpp"
#include "tests/reference_cases.hpp"
#include "tests/test_paths.hpp"

using namespace troupe;
using namespace std::chrono_literals;

namespace {

// Every reference case submitted at once; the results in case order.
class HonestLoad {
 public:
  HonestLoad(Client& client, const std::vector<test::ReferenceCase>& cases) : results_(cases.size()) {
    for (size_t i = 0; i < cases.size(); ++i) {
      SubmitRequest r;
      r.prompt_ids = cases[i].prompt_ids;
      r.max_tokens = int64_t(cases[i].greedy_ids.size());
      ids_.push_back(client.submit(r, {}, [this, i](const FinishedEvent& e) {
        std::lock_guard lock(mutex_);
        results_[i] = e;
        ++done_;
        cv_.notify_all();
      }));
    }
  }
  const std::vector<int64_t>& ids() const { return ids_; }
  std::vector<FinishedEvent> wait() {
    std::unique_lock lock(mutex_);
    REQUIRE(cv_.wait_for(lock, 300s, [&] { return done_ == results_.size(); }));
    return results_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<FinishedEvent> results_;
  std::vector<int64_t> ids_;
  size_t done_ = 0;
};

void check_reference_ids(const std::vector<FinishedEvent>& results, const std::vector<test::ReferenceCase>& cases) {
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO("case ", i, " ", results[i].error);
    auto ids = results[i].ids;
    ids.resize(std::min(ids.size(), cases[i].compare_first));
    CHECK(ids ==
          std::vector<int32_t>(cases[i].greedy_ids.begin(), cases[i].greedy_ids.begin() + cases[i].compare_first));
  }
}

}  // namespace

TEST_CASE("a hostile peer's forged rank, node, engine and head messages are refused while honest requests finish") {
  TROUPE_REQUIRE_SHARED(dir, "models/gqa260K");
  ClusterSpec spec;
  spec.model = dir;
  spec.troupe_binary = test::binary_dir() / "troupe";
  spec.pp = 2;
  spec.ranks_per_node = {1, 1};
  ClusterProcess cluster(spec);
  auto client = cluster.connect(120s);
  const auto cases = test::load_reference_cases(dir);
  HonestLoad honest(*client, cases);

  // The hostile peer: its own actor system, the coordinator's published handle, and a blocking
  // actor to send from (its address is nobody the coordinator knows).
  auto hostile_config = make_actor_system_config();
  caf::actor_system hostile_system{*hostile_config};
  const CoordinatorHandle coordinator = connect_to_coordinator(hostile_system, "127.0.0.1", cluster.port(), 30s);
  caf::scoped_actor hostile{hostile_system};
  int forged = 0;
  auto forge = [&](auto&&... xs) {
    hostile->send(coordinator, std::forward<decltype(xs)>(xs)...);
    ++forged;
  };
  for (int32_t rank : {0, 1, -1, 7, 1 << 30}) {
    StepResult step;
    step.rank = rank;
    step.micro_batch = 0;
    step.sampled = {5, 5, 5};
    forge(step_done_atom::value, step);
    step.error = "forged failure";
    forge(step_done_atom::value, step);
    forge(loaded_atom::value, RankStatus{rank, 0, 0, false, "forged load error", 0});
    forge(progress_atom::value, RankStatus{rank, 1, 1 << 30, false, "", 0});
  }
  forge(heartbeat_atom::value, std::string("node0"));
  forge(heartbeat_atom::value, std::string(1 << 16, 'x'));
  forge(engine_atom::value, caf::actor_cast<EngineHandle>(hostile));
  forge(submit_atom::value, honest.ids().front(), SubmitRequest{});
  for (int64_t id : honest.ids()) forge(cancel_atom::value, id);
  forge(tick_atom::value);
  forge(shutdown_atom::value);
  int bootstrap_errors = 0;
  for (auto blob : {BootstrapBlob{"pp", 0, 2, "forged"}, BootstrapBlob{"pp", -3, 1 << 30, ""},
                    BootstrapBlob{std::string(1 << 12, 'e'), 0, 1, std::string(1 << 21, 'b')}}) {
    hostile->request(coordinator, 10s, bootstrap_atom::value, blob)
        .receive([](const BootstrapBlobs&) {}, [&](caf::error&) { ++bootstrap_errors; });
    ++forged;
  }
  CHECK(bootstrap_errors == 3);
  // The engine takes tokens only from the coordinator, and cancels only for the submitting client.
  EngineHandle engine;
  hostile->request(coordinator, 10s, engine_atom::value)
      .receive([&](const EngineHandle& e) { engine = e; }, [](caf::error&) {});
  REQUIRE(engine);
  for (int64_t id : honest.ids()) {
    hostile->send(engine, seq_event_atom::value, SequenceUpdate{id, 7, false, FinishReason::None, ""});
    hostile->send(engine, seq_event_atom::value, SequenceUpdate{id, -1, true, FinishReason::Error, "forged"});
    hostile->send(engine, cancel_atom::value, id);
  }

  check_reference_ids(honest.wait(), cases);
  const ClusterStatus status = client->status();
  CHECK(status.state == ClusterState::Ready);
  CHECK(status.refused_messages == forged);
  CHECK(cluster.log().find("refused step_done from") != std::string::npos);
  // And the cluster still serves after the barrage.
  HonestLoad again(*client, cases);
  check_reference_ids(again.wait(), cases);
}

TEST_CASE("a client cannot cancel another client's request") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  ClusterSpec spec;
  spec.model = dir;
  spec.troupe_binary = test::binary_dir() / "troupe";
  ClusterProcess cluster(spec);
  auto owner = cluster.connect(120s);
  auto other = cluster.connect(120s);
  SubmitRequest r;
  r.prompt_ids = {1, 5};
  r.max_tokens = 100;
  r.ignore_eos = true;
  std::mutex m;
  std::condition_variable cv;
  std::optional<FinishedEvent> finished;
  const int64_t id = owner->submit(r, {}, [&](const FinishedEvent& e) {
    std::lock_guard lock(m);
    finished = e;
    cv.notify_all();
  });
  const FinishedEvent refused = other->cancel(id, 10s);
  CHECK(refused.reason == FinishReason::Error);
  CHECK(refused.error == "unknown request id " + std::to_string(id));
  std::unique_lock lock(m);
  REQUIRE(cv.wait_for(lock, 120s, [&] { return finished.has_value(); }));
  CHECK(finished->reason == FinishReason::Length);
  CHECK(finished->ids.size() == 100);
}
