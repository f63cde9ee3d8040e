#pragma once
// NodeSupervisor: the head's child processes — one `troupe node` per node of the config, started
// by `troupe cluster` on its own host — kept running as an OTP supervisor keeps its children
// (one_for_one, with an intensity and a period): a child that exits while the cluster serves is
// started again, at once the first time and then after a backoff that doubles from 0.25 s to 4 s,
// until it has been restarted RecoveryOptions::max_restarts times within restart_period; then it
// stays down (logged), and the coordinator gives up on it after rejoin_timeout. kill(node)
// SIGKILLs a child the coordinator declared hung (a frozen process sends no heartbeat and closes
// no socket); it is then restarted like any other. Restarting is the node's own business for
// nodes started by hand (systemd's Restart=, or an operator): they rejoin the same way.
//
// Thread-safe: kill() comes from the coordinator's thread; poll() and stop() from the head's
// main thread. The supervisor owns its children: stop() reaps every one.
#include <sys/types.h>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "actors/cluster_config.hpp"

namespace troupe {

class NodeSupervisor {
 public:
  using Clock = std::chrono::steady_clock;
  // `start` starts one node's process and returns its pid (throws troupe::Error when it cannot).
  NodeSupervisor(std::function<pid_t(const std::string& node)> start, const RecoveryOptions& options,
                 std::function<void(const std::string&)> log);
  ~NodeSupervisor();  // stop(0) when stop() was not called

  void start(const std::string& node);
  // Reaps the children that exited and starts again those whose backoff is over.
  void poll(Clock::time_point now = Clock::now());
  // SIGKILLs the node's process if it is a running child; true when it was.
  bool kill(const std::string& node);
  // Stops supervising: waits up to `grace` for every child to exit (after the coordinator told
  // them to), then SIGKILLs the rest and reaps them.
  void stop(std::chrono::milliseconds grace);
  std::vector<pid_t> pids() const;              // the running children
  int restarts(const std::string& node) const;  // restarts of `node` so far

 private:
  struct Child {
    pid_t pid = -1;                          // -1: not running
    std::deque<Clock::time_point> restarts;  // within the period
    Clock::time_point restart_at{};          // when not running and due to restart
    bool given_up = false;
    int total_restarts = 0;
  };
  std::function<pid_t(const std::string&)> start_;
  RecoveryOptions options_;
  std::function<void(const std::string&)> log_;
  mutable std::mutex mutex_;
  std::map<std::string, Child> children_;
  bool stopped_ = false;
};

}  // namespace troupe
