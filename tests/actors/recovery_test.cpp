// Recovery with real kills: `troupe cluster` on loopback (a head and one node process per rank),
// reference requests streaming, a rank's process SIGKILLed or SIGSTOPped at a random moment. The
// coordinator restarts every node (the head's supervisor starts the killed one again, the others
// start themselves again in place), the requests are recomputed from their prompt and the tokens
// already streamed, and every request ends with exactly the ids an undisturbed run gives (which
// equal the reference). And when the head itself dies, every client learns it within 5 s.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "actors/client.hpp"
#include "bench/cluster_process.hpp"
#include "kernels/error.hpp"
#include "tests/child_process.hpp"
#include "tests/cli/cli_runner.hpp"
#include "tests/reference_cases.hpp"
#include "tests/request_load.hpp"
#include "tests/test_paths.hpp"

using namespace troupe;
using namespace std::chrono_literals;

namespace {

// Every request finished by its length (none failed), with exactly the ids of `expected`.
void check_same_outputs(const std::vector<FinishedEvent>& got, const std::vector<FinishedEvent>& expected) {
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("request ", i, ": ", got[i].error);
    CHECK(got[i].reason == expected[i].reason);
    CHECK(got[i].ids == expected[i].ids);
  }
}

// A process started by hand (as an operator or systemd would start `troupe node`), in its own
// process group; killed with its group and reaped at the end of the scope.
class HandStartedNode {
 public:
  explicit HandStartedNode(const std::vector<std::string>& argv) {
    const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    REQUIRE(test::spawn_in_own_group(argv, null, null, pid_) == 0);
    ::close(null);
  }
  ~HandStartedNode() {
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }

 private:
  pid_t pid_ = -1;
};

// Submits `requests`, sends `node`'s process `signal` once `after_tokens` tokens have streamed, and
// returns the requests' FinishedEvents and the pid it hit (the head's log is shown when any failed).
std::pair<std::vector<FinishedEvent>, pid_t> hit_mid_stream(const ClusterProcess& cluster, Client& client,
                                                            const std::vector<SubmitRequest>& requests,
                                                            int64_t after_tokens, const std::string& node, int signal) {
  test::RequestLoad load(client, requests);
  REQUIRE(load.wait_for_tokens(after_tokens, 120s));
  const pid_t pid = cluster.node_pid(node);
  REQUIRE(pid > 0);
  REQUIRE(::kill(pid, signal) == 0);
  auto outputs = load.wait(300s, cluster);
  if (std::any_of(outputs.begin(), outputs.end(), [](const FinishedEvent& e) { return !e.error.empty(); }))
    MESSAGE(cluster.log());  // the head's log says what happened
  return {std::move(outputs), pid};
}

ClusterSpec spec_for(const std::filesystem::path& model) {
  ClusterSpec spec;
  spec.model = model;
  spec.troupe_binary = test::binary_dir() / "troupe";
  spec.extra = "[timeouts]\nheartbeat_interval_ms = 100\nheartbeat_timeout_ms = 1500\n";
  return spec;
}

}  // namespace

TEST_CASE("tp=2 x pp=2: SIGKILL of a first-stage, a last-stage and a tp-peer rank mid-stream loses nothing") {
  TROUPE_REQUIRE_SHARED(dir, "models/gqa260K");
  const auto cases = test::load_reference_cases(dir);
  ClusterSpec spec = spec_for(dir);
  spec.tp = 2;
  spec.pp = 2;
  spec.ranks_per_node = {1, 1, 1, 1};  // node i holds rank i: ranks 0, 1 are stage 0; 2, 3 stage 1
  ClusterProcess cluster(spec);
  auto client = cluster.connect(120s);
  const auto requests = test::reference_requests(cases, 32);

  // The undisturbed run: the reference ids, and what every disturbed run must give.
  test::RequestLoad clean(*client, requests);
  const std::vector<FinishedEvent> baseline = clean.wait(300s, cluster);
  for (size_t i = 0; i < baseline.size(); ++i) {
    const auto& c = cases[i % cases.size()];
    INFO("request ", i, ": ", baseline[i].error);
    REQUIRE(baseline[i].ids.size() >= c.compare_first);
    CHECK(std::vector<int32_t>(baseline[i].ids.begin(), baseline[i].ids.begin() + std::ptrdiff_t(c.compare_first)) ==
          std::vector<int32_t>(c.greedy_ids.begin(), c.greedy_ids.begin() + std::ptrdiff_t(c.compare_first)));
  }
  int64_t total_tokens = 0;
  for (const auto& e : baseline) total_tokens += int64_t(e.ids.size());

  std::random_device seed_source;
  const unsigned seed = seed_source();
  std::mt19937 random(seed);
  INFO("kill moments drawn with seed ", seed);
  int64_t recoveries = 0;
  for (int rank : {0, 2, 3}) {
    const std::string node = "node" + std::to_string(rank);
    // A random moment mid-stream: after 5%..60% of the tokens.
    const int64_t kill_after = total_tokens / 20 + int64_t(random() % uint64_t(total_tokens * 11 / 20));
    CAPTURE(rank);
    CAPTURE(kill_after);
    const auto [outputs, pid] = hit_mid_stream(cluster, *client, requests, kill_after, node, SIGKILL);
    check_same_outputs(outputs, baseline);
    const ClusterStatus status = client->wait_until_ready(120s);
    CHECK(status.recoveries > recoveries);  // (a slow machine may add one: a missed heartbeat is a failure too)
    recoveries = status.recoveries;
    MESSAGE("rank ", rank, " killed after ", kill_after, " tokens: ready again ", status.last_recovery_seconds,
            " s after the failure");
    CHECK(cluster.node_pid(node) != pid);  // the supervisor started it again
  }
  CHECK(cluster.log().find("restarting it") != std::string::npos);
}

TEST_CASE("pp=2: a SIGSTOPped rank is declared failed by its missed heartbeats, killed and replaced: nothing is lost") {
  TROUPE_REQUIRE_SHARED(dir, "models/gqa260K");
  const auto cases = test::load_reference_cases(dir);
  ClusterSpec spec = spec_for(dir);
  spec.pp = 2;
  spec.ranks_per_node = {1, 1};
  ClusterProcess cluster(spec);
  auto client = cluster.connect(120s);
  const auto requests = test::reference_requests(cases, 16);
  test::RequestLoad clean(*client, requests);
  const std::vector<FinishedEvent> baseline = clean.wait(300s, cluster);

  const auto [outputs, frozen] = hit_mid_stream(cluster, *client, requests, 40, "node1", SIGSTOP);
  check_same_outputs(outputs, baseline);
  CHECK(client->wait_until_ready(120s).recoveries >= 1);
  const std::string log = cluster.log();
  CHECK(log.find("no heartbeat for") != std::string::npos);
  CHECK(log.find("node 'node1' (pid " + std::to_string(frozen) + ") declared failed: killed") != std::string::npos);
  CHECK(cluster.node_pid("node1") != frozen);
}

TEST_CASE("when the head process dies, every client's requests end with an error within 5 s") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  ClusterSpec spec = spec_for(dir);
  spec.pp = 2;
  spec.ranks_per_node = {1, 1};
  ClusterProcess cluster(spec);
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<std::unique_ptr<test::RequestLoad>> loads;
  SubmitRequest endless;
  endless.prompt_ids = {1, 2, 3};
  endless.max_tokens = 100000;  // to the end of the context: still streaming when the head dies
  endless.ignore_eos = true;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(cluster.connect(120s));
    loads.push_back(std::make_unique<test::RequestLoad>(*clients.back(), std::vector<SubmitRequest>(4, endless)));
  }
  for (auto& load : loads) REQUIRE(load->wait_for_tokens(8, 60s));
  const auto killed_at = std::chrono::steady_clock::now();
  REQUIRE(kill(cluster.head_pid(), SIGKILL) == 0);
  for (auto& load : loads)
    for (const FinishedEvent& e : load->wait(5s)) {
      CHECK(e.reason == FinishReason::Error);
      CHECK(e.error.find("lost the connection to the cluster's engine") != std::string::npos);
    }
  MESSAGE("every client saw the error ",
          std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count(), " s after the kill");
  // And a call on a client of the dead head fails at once, naming why, instead of waiting.
  SubmitRequest late;
  late.prompt_ids = {1};
  CHECK_THROWS_WITH_AS(clients[0]->submit(late, {}, {}), doctest::Contains("lost the connection"), Error);
}

TEST_CASE("troupe bench chaos: ranks killed and frozen under load, every request exact, nothing lost") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  // Half a minute, a rank hit every 5 s, half of the hits a SIGSTOP. Seeded, so the hits are fixed:
  // seed 4 draws kill, freeze, freeze first (at 5, 10, 15 s: well inside the run on a slow build).
  const test::CommandResult run =
      test::run_troupe("bench chaos --model " + test::shell_quoted(dir.string()) +
                           " --tp 1 --pp 2 --duration 30 --kill-every 5 --concurrency 8 --distinct 16 "
                           "--max-tokens 24 --freeze-fraction 0.5 --seed 4",
                       std::chrono::seconds(400));
  INFO(run.out, run.err);
  CHECK(run.exit_code == 0);
  CHECK(run.out.find(" failed, 0 wrong, 0 lost") != std::string::npos);
  CHECK(run.out.find("requests: 0 completed") == std::string::npos);
  CHECK(run.out.find(", 0 failed,") != std::string::npos);
  CHECK(run.err.find("froze node") != std::string::npos);
  CHECK(run.err.find("killed node") != std::string::npos);
}

TEST_CASE("dp=2 x pp=2: a node killed for good, the other replica finishes every request exactly") {
  TROUPE_REQUIRE_SHARED(dir, "models/gqa260K");
  const auto cases = test::load_reference_cases(dir);
  ClusterSpec spec = spec_for(dir);
  spec.pp = 2;
  spec.dp = 2;
  spec.ranks_per_node = {1, 1, 1, 1};  // replica 0: node0, node1; replica 1: node2, node3
  // The head's supervisor restarts nothing: a killed node stays gone.
  spec.extra += "[recovery]\nmax_restarts = 0\nrejoin_timeout_ms = 3000\n";
  ClusterProcess cluster(spec);
  auto client = cluster.connect(120s);
  const auto requests = test::reference_requests(cases, 32);
  test::RequestLoad clean(*client, requests);
  const std::vector<FinishedEvent> baseline = clean.wait(300s, cluster);

  check_same_outputs(hit_mid_stream(cluster, *client, requests, 60, "node3", SIGKILL).first, baseline);
  // Replica 1 waits for node3, then is given up; replica 0 serves alone, exactly.
  ClusterStatus status;
  for (auto end = std::chrono::steady_clock::now() + 60s; std::chrono::steady_clock::now() < end;) {
    status = client->status();
    if (status.detail.find("given up") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);  // polling the coordinator's view
  }
  CHECK(status.detail.find("replica 1 given up: node(s) node3 did not join again within 3000 ms") != std::string::npos);
  CHECK(status.state == ClusterState::Recovering);
  test::RequestLoad alone(*client, requests);
  check_same_outputs(alone.wait(300s, cluster), baseline);
  CHECK(cluster.log().find("node 'node3' killed by Killed; not restarting it") != std::string::npos);

  // node3 started again by hand (as systemd would): the cluster is whole and ready again.
  const HandStartedNode node({(test::binary_dir() / "troupe").string(), "node", "--config",
                              cluster.config_file().string(), "--node", "node3"});
  CHECK(client->wait_until_ready(120s).state == ClusterState::Ready);
  CHECK(client->status().detail.empty());
  test::RequestLoad whole(*client, requests);
  check_same_outputs(whole.wait(300s, cluster), baseline);
}
