#pragma once
// ClusterMembership: who is in a cluster and whether it can serve — the coordinator's membership
// and health logic, without messaging (a plain class: the coordinator actor feeds it events and
// sends what it decides; tests drive it directly). Nodes join with the cluster's name and secret
// and exactly the ranks the config gives them; ranks report loading and then ready; heartbeats keep
// a node alive. A node that misses them or is reported gone is down. The state: Starting -> Loading
// (every node joined) -> Ready (every rank loaded); once it was ready, a node that restarts (forget)
// makes it Recovering until that node has joined again and its ranks are loaded, then Ready again;
// Degraded from any state, for good (the coordinator gave up). Holds a copy of its config.
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "actors/cluster_config.hpp"

namespace troupe {

enum class ClusterState : uint8_t { Starting, Loading, Ready, Degraded, Recovering };
// "starting", "loading", "ready", "degraded", "recovering" (else "unknown")
const char* to_string(ClusterState state);

class ClusterMembership {
 public:
  using Clock = std::chrono::steady_clock;
  explicit ClusterMembership(const ClusterConfig& config);

  // Admits a node offering `ranks` (again, after forget()); returns the refusal reason, or "" when admitted.
  std::string admit(const std::string& cluster, const std::string& secret, const std::string& node,
                    const std::vector<int32_t>& ranks, Clock::time_point now);
  void heartbeat(const std::string& node, Clock::time_point now);
  // Loading progress of a rank; returns (done, total) layers over every rank.
  std::pair<int64_t, int64_t> rank_progress(int rank, int64_t done, int64_t total);
  // A rank finished loading; true when that made the cluster ready.
  bool rank_ready(int rank);

  // Nodes (not yet down) whose last heartbeat is older than the timeout, with why.
  std::vector<std::pair<std::string, std::string>> overdue(Clock::time_point now) const;
  // Marks a node down; returns the reason to degrade the cluster with, or "" when the node is
  // unknown or already down.
  std::string node_down(const std::string& node, const std::string& why);
  // The node restarts: it leaves the cluster (its ranks are neither joined nor ready) until it
  // joins again. Nothing when it is not a member.
  void forget(const std::string& node);
  // Degrades the cluster; false when it already was (the first reason stays).
  bool degrade(const std::string& why);

  ClusterState state() const;
  // Whether every rank of [first, first + count) is ready (a replica can serve).
  bool all_ready(int first, int count) const;
  // Nodes of the config that are not members now (never joined, or forgotten), in config order.
  std::vector<std::string> absent_nodes() const;
  const std::string& detail() const { return detail_; }  // why it is degraded
  int world_size() const { return int(ranks_.size()); }
  int ranks_joined() const;
  int ranks_ready() const;
  // The node that holds a rank ("" before its node joined); the nodes that joined and are not down.
  const std::string& node_of(int rank) const { return ranks_.at(size_t(rank)).node; }
  std::vector<std::string> live_nodes() const;

 private:
  struct Rank {
    std::string node;
    bool ready = false;
    int64_t done = 0, total = 0;
  };
  struct Node {
    Clock::time_point last_heartbeat;
    std::vector<int> ranks;
    bool down = false;
  };
  ClusterConfig config_;
  bool was_ready_ = false, degraded_ = false;
  std::string detail_;
  std::vector<Rank> ranks_;
  std::map<std::string, Node> nodes_;
};

}  // namespace troupe
