// Every troupe process ends by itself, promptly, on every exit path: SIGTERM to the head or to a
// node, a head that dies under its nodes, a node whose coordinator cannot be reached. (The refused
// join is in cluster_test.cpp.) Real processes on loopback.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "actors/exit_deadline.hpp"
#include "bench/cluster_process.hpp"
#include "comm/tcp_rendezvous.hpp"
#include "tests/child_process.hpp"
#include "tests/cli/cli_runner.hpp"
#include "tests/test_paths.hpp"

using namespace troupe;
using namespace std::chrono_literals;

namespace {

// True once `pid` has exited (gone, or a zombie awaiting its new parent), false at the deadline.
bool exits_within(pid_t pid, std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string pid_field, name, state;
    if (!(stat >> pid_field >> name >> state) || state == "Z") return true;
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(20ms);  // polling another process's exit
  }
}

ClusterSpec two_node_spec(const std::filesystem::path& model) {
  ClusterSpec spec;
  spec.model = model;
  spec.troupe_binary = test::binary_dir() / "troupe";
  spec.tp = 2;
  spec.ranks_per_node = {1, 1};  // one tp rank per node process (shared memory between them)
  spec.extra = "[timeouts]\nheartbeat_interval_ms = 100\nheartbeat_timeout_ms = 1000\n";
  return spec;
}

// A served two-node cluster and its node processes.
struct TwoNodeCluster {
  explicit TwoNodeCluster(const std::filesystem::path& model)
      : cluster(two_node_spec(model)), client(cluster.connect(120s)), nodes(cluster.node_pids()) {
    REQUIRE(nodes.size() == 2);
  }
  ClusterProcess cluster;
  std::unique_ptr<Client> client;
  std::vector<pid_t> nodes;
};

}  // namespace

TEST_CASE("SIGTERM to the head ends the head and every node within the teardown bound") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  TwoNodeCluster c(dir);
  auto& [cluster, client, nodes] = c;
  client.reset();
  const auto t0 = std::chrono::steady_clock::now();
  auto status = cluster.terminate(20s);
  REQUIRE_MESSAGE(status.has_value(), "the head ignored SIGTERM for 20 s\n" << cluster.log());
  // A status other than 0 (66: a ThreadSanitizer report) is explained by the head's log.
  CHECK_MESSAGE((WIFEXITED(*status) && WEXITSTATUS(*status) == 0), "head exit status " << *status << "\n"
                                                                                       << cluster.log());
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);  // without needing the head's SIGKILL after 5 s
  for (pid_t node : nodes) CHECK_MESSAGE(exits_within(node, 5s), "node process " << node << " outlived its head");
}

TEST_CASE("SIGTERM to a node ends it within the teardown bound, the head sees it go and recovers") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  TwoNodeCluster c(dir);
  auto& [cluster, client, nodes] = c;
  kill(nodes[1], SIGTERM);
  CHECK(exits_within(nodes[1], 6s));
  // The head's supervisor starts the node again and the cluster recovers (one epoch later).
  ClusterStatus status;
  for (auto end = std::chrono::steady_clock::now() + 60s; std::chrono::steady_clock::now() < end;) {
    status = client->status();
    if (status.recoveries == 1 && status.state == ClusterState::Ready) break;
    std::this_thread::sleep_for(50ms);  // polling the coordinator's view
  }
  CHECK(status.recoveries == 1);
  CHECK(status.state == ClusterState::Ready);
}

TEST_CASE("with [recovery] enabled = false, SIGTERM to a node degrades the cluster and it is not restarted") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  ClusterSpec spec = two_node_spec(dir);
  spec.extra += "[recovery]\nenabled = false\n";
  ClusterProcess cluster(spec);
  auto client = cluster.connect(120s);
  const std::vector<pid_t> nodes = cluster.node_pids();
  REQUIRE(nodes.size() == 2);
  kill(nodes[1], SIGTERM);
  CHECK(exits_within(nodes[1], 6s));
  ClusterState state = ClusterState::Starting;
  bool left_down = false;  // the head's supervisor reaps the node within its 100 ms poll and says so
  for (auto end = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < end;) {
    state = client->status().state;
    left_down = cluster.log().find("not restarting it") != std::string::npos;
    if (state == ClusterState::Degraded && left_down) break;
    std::this_thread::sleep_for(50ms);  // polling the coordinator's view and the head's log
  }
  CHECK(state == ClusterState::Degraded);
  CHECK(left_down);
}

TEST_CASE("a head killed under its nodes: every node exits by itself") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  TwoNodeCluster c(dir);
  auto& [cluster, client, nodes] = c;
  client.reset();
  kill(cluster.head_pid(), SIGKILL);
  for (pid_t node : nodes) CHECK_MESSAGE(exits_within(node, 8s), "node process " << node << " outlived its head");
}

TEST_CASE("a node with no coordinator to reach exits 1 after its startup timeout, naming the address") {
  ClusterSpec spec;
  spec.model = "/nonexistent/model";  // never loaded: the node gives up before
  spec.extra = "[timeouts]\nstartup_timeout_ms = 1000\n";
  const int port = TcpRendezvous::free_port();
  auto path =
      std::filesystem::temp_directory_path() / ("troupe_no_coordinator_" + std::to_string(::getpid()) + ".toml");
  std::ofstream(path) << cluster_toml(spec, port);
  auto node = test::run_troupe("node --config " + test::shell_quoted(path.string()) + " --node node0", 60s);
  std::filesystem::remove(path);
  INFO(node.err);
  CHECK(node.exit_code == 1);
  CHECK(node.err.find("no coordinator at 127.0.0.1:" + std::to_string(port) + " within 1000 ms") != std::string::npos);
  CHECK(node.seconds < 10);
}

TEST_CASE("a troupe process bound to its starter (TROUPE_EXIT_WITH_PARENT) ends when the starter is SIGKILLed") {
  TROUPE_REQUIRE_SHARED(dir, "models/aidreams260K");
  // sh starts `troupe serve` bound to itself, prints the server's pid and waits; the test kills sh.
  const std::string troupe = (test::binary_dir() / "troupe").string();
  const std::string command = "TROUPE_EXIT_WITH_PARENT=$$ " + test::shell_quoted(troupe) + " serve --model " +
                              test::shell_quoted(dir.string()) + " --port 0 >/dev/null 2>&1 & echo $!; wait";
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t sh = 0;
  REQUIRE(test::spawn_in_own_group({"/bin/sh", "-c", command}, fds[1], 2, sh) == 0);
  ::close(fds[1]);
  std::string line;
  char c;
  while (::read(fds[0], &c, 1) == 1 && c != '\n') line += c;  // ends at the newline or when sh is gone
  ::close(fds[0]);
  REQUIRE_FALSE(line.empty());
  const pid_t server = pid_t(std::stol(line));
  CHECK_FALSE(exits_within(server, 300ms));  // it runs while its starter lives
  ::kill(sh, SIGKILL);
  ::waitpid(sh, nullptr, 0);
  const bool ended = exits_within(server, std::chrono::duration_cast<std::chrono::milliseconds>(kTeardownGrace) + 5s);
  CHECK(ended);
  if (!ended) ::kill(server, SIGKILL);
}
