// A cluster with mutual TLS, attacked from loopback: a peer without a certificate the cluster CA
// signed cannot connect (cleartext, a foreign CA, raw bytes), and its attempts do not disturb the
// members' connections; `troupe submit` without a client certificate is refused saying so. A peer
// that holds a valid client certificate but did not join as the rank, node, engine or head it
// claims to be: every message it forges is dropped and counted, the cluster stays ready, and
// honest requests running at the same time return exactly the reference ids. Real processes
// (`troupe cluster` on loopback); the hostile peers are CAF nodes in this test process.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "actors/client.hpp"
#include "actors/cluster_keys.hpp"
#include "actors/messages.hpp"
#include "bench/cluster_process.hpp"
#include "kernels/error.hpp"
#include "tests/cli/cli_runner.hpp"
#include "tests/reference_cases.hpp"
#include "tests/request_load.hpp"
#include "tests/test_paths.hpp"

using namespace troupe;
using namespace std::chrono_literals;

namespace {

void check_reference_ids(const std::vector<FinishedEvent>& results, const std::vector<test::ReferenceCase>& cases) {
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO("case ", i, " ", results[i].error);
    auto ids = results[i].ids;
    ids.resize(std::min(ids.size(), cases[i].compare_first));
    CHECK(ids ==
          std::vector<int32_t>(cases[i].greedy_ids.begin(), cases[i].greedy_ids.begin() + cases[i].compare_first));
  }
}

// A fresh directory under the system's temporary directory, removed with its contents on destruction.
class TemporaryDirectory {
 public:
  explicit TemporaryDirectory(const std::string& prefix) {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    REQUIRE(mkdtemp(pattern.data()));
    path_ = pattern;
  }
  ~TemporaryDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Tries to reach the coordinator at `port` presenting `tls` (nothing: cleartext); the error text,
// empty when it connected.
std::string try_connect(int port, const TlsCredentials& tls) {
  // The probe's actor system is kept to the end of the process: CAF 0.17 can wait for ever
  // destroying a system whose refused connection is still half open (reachable, so no leak report).
  static auto* kept =
      new std::vector<std::pair<std::unique_ptr<caf::actor_system_config>, std::unique_ptr<caf::actor_system>>>();
  auto& [config, system_ptr] = kept->emplace_back(make_actor_system_config(tls), nullptr);
  system_ptr = std::make_unique<caf::actor_system>(*config);
  caf::actor_system& system = *system_ptr;
  try {
    connect_to_coordinator(system, "127.0.0.1", port, 3s, tls);
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

// Connects with plain TCP and sends bytes that are no TLS handshake.
void send_raw_bytes(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  const std::string junk = "GET / HTTP/1.1\r\n\r\n" + std::string(4096, '\x16');
  CHECK(::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL) > 0);
  ::close(fd);
}

// The local addresses ("127.0.0.1:47011", "[::]:80") of the TCP sockets process `pid` listens
// on, read from /proc as `ss -ltnp` does: the socket inodes among its descriptors, matched to the
// LISTEN rows of its network namespace's tcp and tcp6 tables.
std::vector<std::string> listening_addresses(pid_t pid) {
  std::set<std::string> inodes;
  for (const auto& fd : std::filesystem::directory_iterator(fmt::format("/proc/{}/fd", pid))) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(fd.path(), ec).string();
    if (!ec && target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
  }
  std::vector<std::string> out;
  for (const char* table : {"tcp", "tcp6"}) {
    std::ifstream in(fmt::format("/proc/{}/net/{}", pid, table));
    std::string line;
    std::getline(in, line);  // the column names
    while (std::getline(in, line)) {
      std::istringstream row(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      row >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
      if (state != "0A" || !inodes.count(inode)) continue;  // 0A: LISTEN
      const std::string hex = local.substr(0, local.find(':'));
      const int port = std::stoi(local.substr(local.find(':') + 1), nullptr, 16);
      char text[INET6_ADDRSTRLEN] = "?";
      if (hex.size() == 8) {
        in_addr a{uint32_t(std::stoul(hex, nullptr, 16))};  // the kernel prints the word in host order
        inet_ntop(AF_INET, &a, text, sizeof text);
        out.push_back(fmt::format("{}:{}", text, port));
      } else {
        in6_addr a{};
        for (int w = 0; w < 4; ++w) {
          const uint32_t word = uint32_t(std::stoul(hex.substr(size_t(w) * 8, 8), nullptr, 16));
          std::memcpy(reinterpret_cast<char*>(&a) + w * 4, &word, 4);
        }
        inet_ntop(AF_INET6, &a, text, sizeof text);
        out.push_back(fmt::format("[{}]:{}", text, port));
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("a hostile peer's forged rank, node, engine and head messages are refused while honest requests finish") {
  TROUPE_REQUIRE_SHARED(dir, "models/gqa260K");
  ClusterSpec spec;
  spec.model = dir;
  spec.troupe_binary = test::binary_dir() / "troupe";
  spec.pp = 2;
  spec.ranks_per_node = {1, 1};  // two node processes: their links to the head are TLS too
  spec.tls = true;
  ClusterProcess cluster(spec);
  auto client = cluster.connect(120s);
  const auto cases = test::load_reference_cases(dir);

  // Without a certificate the cluster CA signed, nobody gets in: cleartext, a certificate from
  // another CA, bytes that are no handshake. Each attempt fails within its deadline, naming what
  // was missing.
  const std::string cleartext = try_connect(cluster.port(), {});
  CHECK(cleartext.find("a cluster with [tls] refuses a peer without a certificate") != std::string::npos);
  // The foreign keys live as long as the probe's actor system (to the end of the process): its
  // OpenSSL module reads them again for every connection attempt, and an attempt that the
  // probe's deadline gave up on may still run; a missing file would end the process.
  static const TemporaryDirectory foreign_dir("troupe-foreign-ca");
  make_cluster_keys({foreign_dir.path()});
  const std::string foreign =
      try_connect(cluster.port(),
                  {cluster.tls_dir() / "ca.pem", foreign_dir.path() / "client.pem", foreign_dir.path() / "client.key"});
  CHECK(foreign.find("it must be signed by the cluster's CA") != std::string::npos);
  send_raw_bytes(cluster.port());
  // `troupe submit` without a client certificate is refused before it connects, saying which
  // credential is missing; with one it is served.
  const std::string submit = "submit --config " + cluster.config_file().string() + " --prompt-ids 1,2 --max-tokens 3";
  const test::CommandResult refused = test::run_troupe(submit);
  CHECK(refused.exit_code != 0);
  CHECK(refused.err.find("the client certificate and its key are missing") != std::string::npos);
  const test::CommandResult served =
      test::run_troupe(submit + " --tls-cert " + (cluster.tls_dir() / "client.pem").string() + " --tls-key " +
                       (cluster.tls_dir() / "client.key").string());
  CHECK(served.exit_code == 0);
  // The members' connections survived all of that.
  CHECK(client->status().state == ClusterState::Ready);
  // A loopback config listens on loopback only (`ss -ltnp`): the coordinator, and no UCX listener
  // on the host's other addresses (the nodes' pipeline goes through shared memory).
  std::vector<pid_t> pids = cluster.node_pids();
  CHECK(pids.size() == 2);
  pids.push_back(cluster.head_pid());
  int listeners = 0;
  for (pid_t pid : pids)
    for (const std::string& address : listening_addresses(pid)) {
      INFO("process ", pid, " listens on ", address);
      CHECK((address.rfind("127.", 0) == 0 || address.rfind("[::1]", 0) == 0));
      ++listeners;
    }
  CHECK(listeners >= 1);  // the coordinator's port, at least: the scan sees sockets

  test::RequestLoad honest(*client, test::reference_requests(cases, cases.size()));
  // The hostile peer: a valid client certificate, its own actor system, the coordinator's
  // published handle, and a blocking actor to send from (an address nobody in the cluster knows).
  auto hostile_config = make_actor_system_config(cluster.client_credentials());
  caf::actor_system hostile_system{*hostile_config};
  const CoordinatorHandle coordinator =
      connect_to_coordinator(hostile_system, "127.0.0.1", cluster.port(), 30s, cluster.client_credentials());
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

  check_reference_ids(honest.wait(300s, cluster), cases);
  const ClusterStatus status = client->status();
  CHECK(status.state == ClusterState::Ready);
  CHECK(status.refused_messages == forged);
  CHECK(cluster.log().find("refused step_done from") != std::string::npos);
  // And the cluster still serves after the barrage.
  test::RequestLoad again(*client, test::reference_requests(cases, cases.size()));
  check_reference_ids(again.wait(300s, cluster), cases);
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
