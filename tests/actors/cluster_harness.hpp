#pragma once
// Starts a real `troupe cluster` (head + node processes on loopback) from a generated config and
// stops it at the end of a test.
#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "actors/client.hpp"

namespace troupe::test {

struct ClusterSpec {
  std::string name = "test";
  std::filesystem::path model;
  int tp = 1, pp = 1, dp = 1, ep = 1;
  std::vector<int> ranks_per_node = {1};
  std::string extra;  // more TOML appended ([scheduler], [timeouts] tables)
  std::string secret = "s3cret";
};

std::string cluster_toml(const ClusterSpec& spec, int port);

class ClusterProcess {
 public:
  explicit ClusterProcess(const ClusterSpec& spec);
  ~ClusterProcess();
  ClusterProcess(const ClusterProcess&) = delete;
  ClusterProcess& operator=(const ClusterProcess&) = delete;

  std::unique_ptr<Client> connect() const;  // connected and ready
  std::vector<pid_t> node_pids() const;     // the node processes the head started
  std::string log() const;                  // the head's stderr so far
  const std::filesystem::path& config_file() const { return config_; }
  int port() const { return port_; }

 private:
  std::filesystem::path dir_, config_, log_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace troupe::test
