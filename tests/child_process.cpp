#include "tests/child_process.hpp"
#include "actors/parent_watch.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

extern char** environ;

namespace troupe::test {

namespace {

using Clock = std::chrono::steady_clock;

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Reads what is available on fd into out; closes fd at end of file.
void drain(int& fd, std::string& out) {
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, size_t(n));
      continue;
    }
    if (n < 0 && (errno == EINTR)) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    close_fd(fd);  // EOF or a hard error
    return;
  }
}

}  // namespace

std::string ChildResult::describe() const {
  std::ostringstream s;
  if (timed_out)
    s << "killed at its deadline after " << seconds << " s";
  else if (term_signal)
    s << "ended by signal " << term_signal << " (" << strsignal(term_signal) << ") after " << seconds << " s";
  else
    s << "exit " << exit_code << " after " << seconds << " s";
  s << "\n--- stdout ---\n" << out << "\n--- stderr ---\n" << err;
  return s.str();
}

int spawn_in_own_group(const std::vector<std::string>& argv, int out_fd, int err_fd, pid_t& pid) {
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&files, out_fd, 1);
  posix_spawn_file_actions_adddup2(&files, err_fd, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);  // its own group: the caller's teardown kills everything it started
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ChildEnvironment env;  // a troupe child ends if this test process dies abruptly (parent_watch.hpp)
  const int rc = ::posix_spawn(&pid, args[0], &files, &attr, args.data(), env.pointers());
  posix_spawn_file_actions_destroy(&files);
  posix_spawnattr_destroy(&attr);
  return rc;
}

ChildResult run_child(const std::vector<std::string>& argv, std::chrono::milliseconds deadline, bool merge_stderr) {
  ChildResult r;
  int out_pipe[2], err_pipe[2] = {-1, -1};
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || (!merge_stderr && ::pipe2(err_pipe, O_CLOEXEC) != 0))
    FAIL("cannot create a pipe: " << std::strerror(errno));
  const auto start = Clock::now();
  pid_t pid = -1;
  const int rc = spawn_in_own_group(argv, out_pipe[1], merge_stderr ? out_pipe[1] : err_pipe[1], pid);
  ::close(out_pipe[1]);
  if (err_pipe[1] >= 0) ::close(err_pipe[1]);
  int out_fd = out_pipe[0], err_fd = err_pipe[0];
  if (rc != 0) {
    close_fd(out_fd);
    close_fd(err_fd);
    FAIL("cannot start " << argv[0] << ": " << std::strerror(rc));
  }
  ::fcntl(out_fd, F_SETFL, O_NONBLOCK);
  if (err_fd >= 0) ::fcntl(err_fd, F_SETFL, O_NONBLOCK);
  int pid_fd = int(::syscall(SYS_pidfd_open, pid, 0));  // readable when the child exits (Linux 5.3+)

  const auto end = start + deadline;
  int status = 0;
  bool reaped = false;
  while (!reaped) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
    if (left <= 0) {
      r.timed_out = true;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      reaped = true;
      break;
    }
    pollfd fds[3];
    int n = 0;
    if (out_fd >= 0) fds[n++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) fds[n++] = {err_fd, POLLIN, 0};
    if (pid_fd >= 0) fds[n++] = {pid_fd, POLLIN, 0};
    // Without a pidfd (old kernel) the loop checks for the exit every 50 ms once the pipes close.
    const int wait_ms = pid_fd >= 0 ? int(std::min<long long>(left, 1000)) : int(std::min<long long>(left, 50));
    ::poll(fds, nfds_t(n), wait_ms);
    if (out_fd >= 0) drain(out_fd, r.out);
    if (err_fd >= 0) drain(err_fd, merge_stderr ? r.out : r.err);
    if (::waitpid(pid, &status, WNOHANG) == pid) reaped = true;
  }
  // The child is gone; what is left in the pipes is read without blocking (the fds are
  // non-blocking): a grandchild that still holds a pipe must not hang the test either.
  if (out_fd >= 0) drain(out_fd, r.out);
  if (err_fd >= 0) drain(err_fd, merge_stderr ? r.out : r.err);
  close_fd(out_fd);
  close_fd(err_fd);
  if (pid_fd >= 0) ::close(pid_fd);
  ::kill(-pid, SIGKILL);  // whatever the child left running in its group ends with it
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (WIFEXITED(status) && !r.timed_out) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.term_signal = WTERMSIG(status);
  return r;
}

ChildResult run_shell(const std::string& command, std::chrono::milliseconds deadline, bool merge_stderr) {
  return run_child({"/bin/sh", "-c", command}, deadline, merge_stderr);
}

void require_no_timeout(const ChildResult& result) {
  if (result.timed_out) FAIL("a child process hung: " << result.describe());
}

std::string shell_quoted(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'')
      quoted += "'\\''";
    else
      quoted += c;
  }
  return quoted + "'";
}

}  // namespace troupe::test
