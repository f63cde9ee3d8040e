#include "bench/cluster_process.hpp"
#include "actors/parent_watch.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "actors/cluster_keys.hpp"
#include "comm/tcp_rendezvous.hpp"
#include "kernels/error.hpp"

extern char** environ;

namespace troupe {

std::string cluster_toml(const ClusterSpec& spec, int port, const std::filesystem::path& tls_dir) {
  std::string t = fmt::format(
      "[cluster]\nname = \"{}\"\nsecret = \"{}\"\ncoordinator = \"127.0.0.1:{}\"\n\n[model]\npath = \"{}\"\n\n"
      "[parallel]\ntp = {}\npp = {}\ndp = {}\nep = {}\n\n{}\n",
      spec.name, spec.secret, port, spec.model.string(), spec.tp, spec.pp, spec.dp, spec.ep, spec.extra);
  if (!tls_dir.empty())
    t += fmt::format("[tls]\nca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n\n",
                     (tls_dir / "ca.pem").string(), (tls_dir / "node.pem").string(), (tls_dir / "node.key").string());
  for (size_t i = 0; i < spec.ranks_per_node.size(); ++i)
    t += fmt::format("[[nodes]]\nname = \"node{}\"\nranks = {}\n\n", i, spec.ranks_per_node[i]);
  return t;
}

ClusterProcess::ClusterProcess(const ClusterSpec& spec) {
  // A private directory (mode 0700, unguessable name): the config in it holds the cluster secret.
  std::string dir = (std::filesystem::temp_directory_path() / "troupe-cluster-XXXXXX").string();
  if (!mkdtemp(dir.data())) fail("cannot create a private directory {}: {}", dir, std::strerror(errno));
  dir_ = dir;
  port_ = TcpRendezvous::free_port();
  config_ = dir_ / "cluster.toml";
  log_ = dir_ / "head.log";
  if (spec.tls) {
    tls_dir_ = dir_ / "keys";
    make_cluster_keys({tls_dir_});
  }
  std::ofstream(config_) << cluster_toml(spec, port_, tls_dir_);
  std::string exe = spec.troupe_binary.string();
  std::vector<std::string> args = {exe, "cluster", "--config", config_.string()};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, 2, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&files, 2, 1);  // not the caller's stdout: a test runner waits on that pipe
  ChildEnvironment env;                            // the cluster ends if this process dies abruptly
  if (posix_spawn(&pid_, exe.c_str(), &files, nullptr, argv.data(), env.pointers()) != 0) pid_ = -1;
  posix_spawn_file_actions_destroy(&files);
  if (pid_ < 0) fail("cannot start {}", exe);
}

ClusterProcess::~ClusterProcess() {
  if (pid_ > 0 && !terminate(std::chrono::seconds(20))) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::optional<int> ClusterProcess::terminate(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a child's exit
  }
  pid_ = -1;
  return status;
}

std::unique_ptr<Client> ClusterProcess::connect(std::chrono::milliseconds timeout) const {
  try {
    // Attempts of 10 s, so a head that died at start (a bad config, say) is reported soon instead
    // of after the whole timeout (a refused connection fails at once). Not shorter: a TLS handshake
    // on a loaded machine can take seconds, and CAF 0.17 may hang destroying an actor system
    // whose connect is still pending.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_ptr<Client> client;
    while (!client) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;  // reaped: nothing to stop later
        fail("the cluster's head process exited during start-up (status {})", status);
      }
      try {
        client = Client::connect("127.0.0.1", port_, std::chrono::milliseconds(10000), client_credentials());
      } catch (const Error&) {
        if (std::chrono::steady_clock::now() > deadline) throw;
      }
    }
    client->wait_until_ready(
        std::max(std::chrono::milliseconds(1),
                 std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())));
    return client;
  } catch (const Error& e) {
    std::string tail = log();
    if (tail.size() > 2000) tail = tail.substr(tail.size() - 2000);
    fail("{}\n--- cluster log ---\n{}", e.what(), tail);
  }
}

TlsCredentials ClusterProcess::client_credentials() const {
  if (tls_dir_.empty()) return {};
  return {tls_dir_ / "ca.pem", tls_dir_ / "client.pem", tls_dir_ / "client.key"};
}

std::vector<pid_t> ClusterProcess::node_pids() const {
  std::vector<pid_t> pids;
  std::ifstream in(fmt::format("/proc/{}/task/{}/children", pid_, pid_));
  pid_t p;
  while (in >> p) pids.push_back(p);
  return pids;
}

pid_t ClusterProcess::node_pid(const std::string& node) const {
  for (pid_t pid : node_pids()) {
    std::ifstream in(fmt::format("/proc/{}/cmdline", pid), std::ios::binary);
    std::vector<std::string> args;
    for (std::string arg; std::getline(in, arg, '\0');) args.push_back(arg);
    for (size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == "--node" && args[i + 1] == node) return pid;
  }
  return -1;
}

std::string ClusterProcess::log() const {
  std::ifstream in(log_);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace troupe
