#include "actors/cluster_membership.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <iterator>

#include "actors/secrets.hpp"
#include "kernels/error.hpp"

namespace troupe {

const char* to_string(ClusterState state) {
  constexpr const char* names[] = {"starting", "loading", "ready", "degraded", "recovering"};
  // A state off the wire may hold any byte (a client prints the status the coordinator sent).
  return size_t(state) < std::size(names) ? names[size_t(state)] : "unknown";
}

ClusterMembership::ClusterMembership(const ClusterConfig& config)
    : config_(config), ranks_(size_t(config.world_size())) {}

std::string ClusterMembership::admit(const std::string& cluster, const std::string& secret, const std::string& node,
                                     const std::vector<int32_t>& ranks, Clock::time_point now) {
  if (cluster != config_.name)
    return fmt::format("this coordinator serves cluster '{}', not '{}'", config_.name, cluster);
  if (!same_secret(secret, config_.secret))
    return fmt::format("node '{}' presented the wrong secret for cluster '{}'", node, config_.name);
  std::vector<int> expected;
  try {
    expected = config_.ranks_of(node);
  } catch (const Error& e) {
    return e.what();
  }
  if (std::vector<int>(ranks.begin(), ranks.end()) != expected)
    return fmt::format("node '{}' offered ranks that do not match the config", node);
  if (nodes_.count(node)) return fmt::format("node '{}' has already joined", node);
  nodes_[node] = Node{now, expected, false};
  for (int r : expected) ranks_[size_t(r)] = Rank{node, false, 0, 0};
  return "";
}

void ClusterMembership::heartbeat(const std::string& node, Clock::time_point now) {
  if (auto it = nodes_.find(node); it != nodes_.end()) it->second.last_heartbeat = now;
}

std::pair<int64_t, int64_t> ClusterMembership::rank_progress(int rank, int64_t done, int64_t total) {
  ranks_.at(size_t(rank)).done = done;
  ranks_.at(size_t(rank)).total = total;
  std::pair<int64_t, int64_t> sum{0, 0};
  for (const auto& r : ranks_) sum.first += r.done, sum.second += r.total;
  return sum;
}

bool ClusterMembership::rank_ready(int rank) {
  const ClusterState before = state();
  ranks_.at(size_t(rank)).ready = true;
  if (before == ClusterState::Degraded || ranks_ready() != world_size()) return false;
  was_ready_ = true;
  return before != ClusterState::Ready;
}

ClusterState ClusterMembership::state() const {
  if (degraded_) return ClusterState::Degraded;
  if (nodes_.size() == config_.nodes.size() && ranks_ready() == world_size()) return ClusterState::Ready;
  if (was_ready_) return ClusterState::Recovering;
  return nodes_.size() == config_.nodes.size() ? ClusterState::Loading : ClusterState::Starting;
}

bool ClusterMembership::all_ready(int first, int count) const {
  for (int r = first; r < first + count; ++r)
    if (!ranks_.at(size_t(r)).ready) return false;
  return true;
}

void ClusterMembership::forget(const std::string& node) {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return;
  for (int r : it->second.ranks) ranks_[size_t(r)] = Rank{};
  nodes_.erase(it);
}

std::vector<std::string> ClusterMembership::absent_nodes() const {
  std::vector<std::string> out;
  for (const auto& n : config_.nodes)
    if (!nodes_.count(n.name)) out.push_back(n.name);
  return out;
}

std::vector<std::pair<std::string, std::string>> ClusterMembership::overdue(Clock::time_point now) const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, node] : nodes_)
    if (!node.down && now - node.last_heartbeat > config_.heartbeat_timeout)
      out.emplace_back(
          name, fmt::format("no heartbeat for {} ms (timeout {} ms)",
                            std::chrono::duration_cast<std::chrono::milliseconds>(now - node.last_heartbeat).count(),
                            config_.heartbeat_timeout.count()));
  return out;
}

std::string ClusterMembership::node_down(const std::string& node, const std::string& why) {
  auto it = nodes_.find(node);
  if (it == nodes_.end() || it->second.down) return "";
  it->second.down = true;
  return fmt::format("node '{}' (ranks {}) is down: {}", node, fmt::join(it->second.ranks, ", "), why);
}

bool ClusterMembership::degrade(const std::string& why) {
  if (degraded_) return false;
  degraded_ = true;
  detail_ = why;
  return true;
}

int ClusterMembership::ranks_joined() const {
  return int(std::count_if(ranks_.begin(), ranks_.end(), [](const Rank& r) { return !r.node.empty(); }));
}

int ClusterMembership::ranks_ready() const {
  return int(std::count_if(ranks_.begin(), ranks_.end(), [](const Rank& r) { return r.ready; }));
}

std::vector<std::string> ClusterMembership::live_nodes() const {
  std::vector<std::string> out;
  for (const auto& [name, node] : nodes_)
    if (!node.down) out.push_back(name);
  return out;
}

}  // namespace troupe
