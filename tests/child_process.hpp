#pragma once
// Runs a child process from a test with a deadline, the one way tests start processes and wait for
// them (no raw popen/system). The child gets its own process group; when the deadline passes the
// whole group is SIGKILLed and the result says so, with everything the child printed until then.
// Blocking; safe to call from any test thread; owns nothing after it returns.
#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace troupe::test {

struct ChildResult {
  int exit_code = -1;   // the exit status when the child exited normally, else -1
  int term_signal = 0;  // the signal that ended it, if one did
  bool timed_out = false;
  double seconds = 0;  // wall time until it ended (or was killed)
  std::string out, err;
  // "exit 1 after 0.4 s" / "killed at the 60 s deadline" ..., then stdout and stderr.
  std::string describe() const;
};

// Runs argv (argv[0] a path) with stdin from /dev/null. stdout and stderr are captured apart, or
// both into `out` when merge_stderr is set.
ChildResult run_child(const std::vector<std::string>& argv, std::chrono::milliseconds deadline,
                      bool merge_stderr = false);

// Starts argv (argv[0] a path) in its own process group with every signal unblocked, stdin from
// /dev/null and stdout / stderr on out_fd / err_fd; returns posix_spawn's error (0: started, pid set).
// The caller owns the child: it waits for it, or kills its group.
int spawn_in_own_group(const std::vector<std::string>& argv, int out_fd, int err_fd, pid_t& pid);

// run_child of `/bin/sh -c command`.
ChildResult run_shell(const std::string& command, std::chrono::milliseconds deadline, bool merge_stderr = false);

// Fails the current test case with the child's description when it ran past its deadline.
void require_no_timeout(const ChildResult& result);

// `text` quoted for /bin/sh.
std::string shell_quoted(const std::string& text);

}  // namespace troupe::test
