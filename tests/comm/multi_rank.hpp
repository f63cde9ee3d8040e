#pragma once
// Runs a test body in N real processes (fork) on this host and collects each rank's outcome.
// Children report errors through a pipe and exit with _exit (no doctest teardown in children).
// The parent reaps children as they exit, so a killed rank is gone (not a zombie) while its
// peers are still running, and kills everything left if the whole run overruns `limit`.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace troupe::test {

struct RankOutcome {
  bool ok = false;
  int signal = 0;      // non-zero when the rank was killed by a signal
  std::string error;   // what the rank threw
  double seconds = 0;  // from start until the rank exited
};

inline std::vector<RankOutcome> run_ranks(int n, const std::function<void(int rank)>& body,
                                          std::chrono::seconds limit = std::chrono::seconds(TROUPE_SANITIZED ? 300
                                                                                                             : 90)) {
  std::vector<pid_t> pids(size_t(n), -1);
  std::vector<int> fds(size_t(n), -1);
  std::vector<RankOutcome> out(static_cast<size_t>(n));
  auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < n; ++r) {
    int p[2];
    if (pipe(p) != 0) throw std::runtime_error("pipe failed");
    pid_t pid = fork();
    if (pid == 0) {
      close(p[0]);
      std::string error;
      try {
        body(r);
      } catch (const std::exception& e) {
        error = e.what();
      } catch (...) {
        error = "unknown exception";
      }
      if (!error.empty()) {
        ssize_t w = write(p[1], error.data(), error.size());
        (void)w;
      }
      _exit(error.empty() ? 0 : 1);
    }
    close(p[1]);
    pids[size_t(r)] = pid;
    fds[size_t(r)] = p[0];
  }
  int running = n;
  std::vector<bool> done(size_t(n), false);
  while (running > 0) {
    for (int r = 0; r < n; ++r) {
      if (done[size_t(r)]) continue;
      char buf[4096];
      pollfd pfd{fds[size_t(r)], POLLIN, 0};
      while (poll(&pfd, 1, 0) > 0) {
        ssize_t got = read(fds[size_t(r)], buf, sizeof buf);
        if (got <= 0) break;
        out[size_t(r)].error.append(buf, size_t(got));
      }
      int status = 0;
      if (waitpid(pids[size_t(r)], &status, WNOHANG) == pids[size_t(r)]) {
        ssize_t got;
        while ((got = read(fds[size_t(r)], buf, sizeof buf)) > 0) out[size_t(r)].error.append(buf, size_t(got));
        close(fds[size_t(r)]);
        done[size_t(r)] = true;
        --running;
        out[size_t(r)].ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        out[size_t(r)].signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        out[size_t(r)].seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
    }
    if (std::chrono::steady_clock::now() - start > limit) {
      for (int r = 0; r < n; ++r)
        if (!done[size_t(r)]) {
          kill(pids[size_t(r)], SIGKILL);
          waitpid(pids[size_t(r)], nullptr, 0);
          close(fds[size_t(r)]);
          out[size_t(r)].error += " [killed by run_ranks: the run exceeded its time limit]";
          done[size_t(r)] = true;
        }
      break;
    }
    usleep(1000);  // the parent only supervises; the ranks do the work
  }
  return out;
}

// "rank 1: <error>; rank 3: killed by signal 9" for failed ranks (empty when all succeeded).
inline std::string failures(const std::vector<RankOutcome>& outcomes) {
  std::string s;
  for (size_t r = 0; r < outcomes.size(); ++r) {
    if (outcomes[r].ok) continue;
    s += "rank " + std::to_string(r) + ": " +
         (outcomes[r].signal ? "killed by signal " + std::to_string(outcomes[r].signal) : outcomes[r].error) + "; ";
  }
  return s;
}

// Runs body(rank) on n threads of this process (one rank per thread); returns "" when all
// succeeded, else "rank r: <error>; ..." for the ranks that threw.
inline std::string run_rank_threads(int n, const std::function<void(int rank)>& body) {
  std::vector<std::string> errors(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      try {
        body(r);
      } catch (const std::exception& e) {
        errors[size_t(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  std::string s;
  for (int r = 0; r < n; ++r)
    if (!errors[size_t(r)].empty()) s += "rank " + std::to_string(r) + ": " + errors[size_t(r)] + "; ";
  return s;
}

// A name unique to this test process and call, for shm segments.
inline std::string unique_name(const std::string& what) {
  static int counter = 0;
  return "troupe-test-" + what + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

}  // namespace troupe::test
