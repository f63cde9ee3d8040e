#include "actors/node_supervisor.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <utility>

#include "kernels/error.hpp"

namespace troupe {

namespace {

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) return fmt::format("killed by {}", strsignal(WTERMSIG(status)));
  return fmt::format("exited with status {}", WEXITSTATUS(status));
}

}  // namespace

NodeSupervisor::NodeSupervisor(std::function<pid_t(const std::string&)> start, const RecoveryOptions& options,
                               std::function<void(const std::string&)> log)
    : start_(std::move(start)), options_(options), log_(std::move(log)) {}

NodeSupervisor::~NodeSupervisor() {
  if (!stopped_) stop(std::chrono::milliseconds(0));
}

void NodeSupervisor::start(const std::string& node) {
  const pid_t pid = start_(node);
  std::lock_guard lock(mutex_);
  children_[node].pid = pid;
}

void NodeSupervisor::poll(Clock::time_point now) {
  std::vector<std::string> due;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    for (auto& [name, child] : children_) {
      int status = 0;
      if (child.pid > 0 && waitpid(child.pid, &status, WNOHANG) == child.pid) {
        child.pid = -1;
        while (!child.restarts.empty() && now - child.restarts.front() > options_.restart_period)
          child.restarts.pop_front();
        if (!options_.enabled || int(child.restarts.size()) >= options_.max_restarts) {
          child.given_up = true;
          log_(fmt::format("node '{}' {}; not restarting it ({} restarts within {} ms{})", name, describe_exit(status),
                           child.restarts.size(), options_.restart_period.count(),
                           options_.enabled ? "" : ", [recovery] enabled = false"));
          continue;
        }
        const auto backoff =
            child.restarts.empty()
                ? std::chrono::milliseconds(0)
                : std::min(std::chrono::milliseconds(4000),
                           std::chrono::milliseconds(250 << std::min<size_t>(child.restarts.size() - 1, 4)));
        child.restart_at = now + backoff;
        child.restarts.push_back(now);
        ++child.total_restarts;
        log_(fmt::format("node '{}' {}; restarting it in {} ms (restart {} within {} ms)", name, describe_exit(status),
                         backoff.count(), child.restarts.size(), options_.restart_period.count()));
      }
      if (child.pid < 0 && !child.given_up && now >= child.restart_at) due.push_back(name);
    }
  }
  for (const auto& name : due) {
    try {
      start(name);
    } catch (const Error& e) {
      log_(fmt::format("node '{}' could not be restarted: {}", name, e.what()));
      std::lock_guard lock(mutex_);
      children_[name].given_up = true;
    }
  }
}

bool NodeSupervisor::kill(const std::string& node) {
  std::lock_guard lock(mutex_);
  auto it = children_.find(node);
  if (it == children_.end() || it->second.pid <= 0) return false;
  ::kill(it->second.pid, SIGKILL);  // a child not yet reaped: its pid cannot have been reused
  log_(fmt::format("node '{}' (pid {}) declared failed: killed, to be restarted", node, it->second.pid));
  return true;
}

void NodeSupervisor::stop(std::chrono::milliseconds grace) {
  std::vector<pid_t> pids;
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    for (auto& [name, child] : children_)
      if (child.pid > 0) pids.push_back(std::exchange(child.pid, -1));
  }
  const auto deadline = Clock::now() + grace;
  for (pid_t pid : pids) {
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (Clock::now() >= deadline) {
        ::kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a child's exit; no event to wait on
    }
  }
}

std::vector<pid_t> NodeSupervisor::pids() const {
  std::lock_guard lock(mutex_);
  std::vector<pid_t> out;
  for (const auto& [name, child] : children_)
    if (child.pid > 0) out.push_back(child.pid);
  return out;
}

int NodeSupervisor::restarts(const std::string& node) const {
  std::lock_guard lock(mutex_);
  auto it = children_.find(node);
  return it == children_.end() ? 0 : it->second.total_restarts;
}

}  // namespace troupe
