#pragma once
// ClusterProcess: starts a real `troupe cluster` (head + node processes on loopback) from a
// generated config and stops it when destroyed — for tests and throughput experiments. With
// ClusterSpec::tls the cluster runs mutual TLS with keys made for it alone.
#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/client.hpp"

namespace troupe {

struct ClusterSpec {
  std::string name = "test";
  std::filesystem::path model;
  int tp = 1, pp = 1, dp = 1, ep = 1;
  std::vector<int> ranks_per_node = {1};
  std::string extra;  // more TOML appended ([scheduler], [timeouts] tables)
  std::string secret = "s3cret";
  std::filesystem::path troupe_binary;  // the `troupe` executable to run
  bool tls = false;                     // mutual TLS: ClusterProcess makes keys (troupe keys) in its private directory
};

// The config for `spec` with its coordinator on 127.0.0.1:port; with `tls_dir`, a [tls] table
// naming the node certificate there.
std::string cluster_toml(const ClusterSpec& spec, int port, const std::filesystem::path& tls_dir = {});

class ClusterProcess {
 public:
  explicit ClusterProcess(const ClusterSpec& spec);
  ~ClusterProcess();
  ClusterProcess(const ClusterProcess&) = delete;
  ClusterProcess& operator=(const ClusterProcess&) = delete;

  std::vector<pid_t> node_pids() const;           // the node processes the head started
  pid_t node_pid(const std::string& node) const;  // the process of `node` now (-1: none running)
  pid_t head_pid() const { return pid_; }
  // Sends the head SIGTERM and waits up to `timeout` for it to exit. Returns its wait status, or
  // nothing when it was still running at the deadline (the destructor then kills it).
  std::optional<int> terminate(std::chrono::milliseconds timeout);
  std::string log() const;  // the head's stderr so far
  // A client, connected and the cluster ready (throws naming the state and the head's log tail).
  std::unique_ptr<Client> connect(std::chrono::milliseconds timeout) const;
  const std::filesystem::path& config_file() const { return config_; }
  // With spec.tls: the directory holding ca.pem, node.* and client.* (and the client credentials
  // connect() presents); empty otherwise.
  const std::filesystem::path& tls_dir() const { return tls_dir_; }
  TlsCredentials client_credentials() const;
  int port() const { return port_; }

 private:
  std::filesystem::path dir_, config_, log_, tls_dir_;
  int port_ = 0;
  mutable pid_t pid_ = -1;  // -1 once reaped
};

}  // namespace troupe
