// NodeSupervisor with real child processes (/bin/sh): a child that dies is started again, with a
// backoff, until its restart intensity is spent; kill() ends a hung child, which is then restarted.
#include <doctest/doctest.h>

#include <signal.h>
#include <spawn.h>

#include <thread>

#include "actors/node_supervisor.hpp"
#include "kernels/error.hpp"

extern char** environ;

using namespace troupe;
using namespace std::chrono_literals;

namespace {

pid_t spawn_shell(const std::string& script) {
  std::vector<std::string> args = {"/bin/sh", "-c", script};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, "/bin/sh", nullptr, nullptr, argv.data(), environ) != 0) fail("cannot start /bin/sh");
  return pid;
}

// Polls the supervisor (as the head's main loop does) until `done` or 20 s.
template <class Done>
bool poll_until(NodeSupervisor& supervisor, Done done) {
  for (auto end = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < end;) {
    supervisor.poll();
    if (done()) return true;
    std::this_thread::sleep_for(10ms);  // the head polls on a timer too: child exits come as no event here
  }
  return false;
}

bool logged(const std::vector<std::string>& lines, const std::string& text) {
  for (const auto& l : lines)
    if (l.find(text) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("the node supervisor restarts a child that dies until its restart intensity is spent") {
  RecoveryOptions options;
  options.max_restarts = 2;
  options.restart_period = 60s;
  int starts = 0;
  std::vector<std::string> lines;
  NodeSupervisor supervisor(
      [&](const std::string&) {
        ++starts;
        return spawn_shell("exit 3");
      },
      options, [&](const std::string& line) { lines.push_back(line); });
  supervisor.start("n0");
  REQUIRE(poll_until(supervisor, [&] { return logged(lines, "not restarting it"); }));
  CHECK(starts == 3);  // the first start and two restarts
  CHECK(supervisor.restarts("n0") == 2);
  CHECK(logged(lines, "node 'n0' exited with status 3; restarting it in 0 ms (restart 1 within 60000 ms)"));
  CHECK(logged(lines, "restarting it in 250 ms (restart 2 within 60000 ms)"));  // the backoff doubles from 0.25 s
  CHECK(logged(lines, "node 'n0' exited with status 3; not restarting it (2 restarts within 60000 ms)"));
  CHECK(supervisor.pids().empty());
}

TEST_CASE("the node supervisor kills a child declared hung and starts it again, and stop() reaps every child") {
  int starts = 0;
  std::vector<std::string> lines;
  NodeSupervisor supervisor(
      [&](const std::string&) {
        ++starts;
        return spawn_shell("exec sleep 60");
      },
      RecoveryOptions{}, [&](const std::string& line) { lines.push_back(line); });
  supervisor.start("n0");
  supervisor.start("n1");
  REQUIRE(supervisor.pids().size() == 2);
  CHECK(supervisor.kill("n1"));
  CHECK_FALSE(supervisor.kill("nobody"));
  REQUIRE(poll_until(supervisor, [&] { return starts == 3 && supervisor.pids().size() == 2; }));
  CHECK(logged(lines, "node 'n1' killed by Killed; restarting it in 0 ms"));
  const std::vector<pid_t> running = supervisor.pids();
  supervisor.stop(200ms);  // they ignore nobody's shutdown: SIGKILL after the grace, then reaped
  CHECK(supervisor.pids().empty());
  for (pid_t pid : running) CHECK(::kill(pid, 0) == -1);  // reaped: no such process any more
}

TEST_CASE("with [recovery] enabled = false the node supervisor restarts nothing") {
  RecoveryOptions options;
  options.enabled = false;
  int starts = 0;
  std::vector<std::string> lines;
  NodeSupervisor supervisor(
      [&](const std::string&) {
        ++starts;
        return spawn_shell("exit 0");
      },
      options, [&](const std::string& line) { lines.push_back(line); });
  supervisor.start("n0");
  REQUIRE(poll_until(supervisor, [&] { return logged(lines, "not restarting it"); }));
  CHECK(starts == 1);
  CHECK(logged(lines, "[recovery] enabled = false"));
}
