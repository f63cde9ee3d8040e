#include "actors/process_restart.hpp"

#include <linux/close_range.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

namespace troupe {

void restart_this_process(const std::string& who) {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t start = 0; start < cmdline.size();) {
    const size_t end = cmdline.find('\0', start);
    args.push_back(cmdline.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fprintf(stderr, "[%s] restarting this process to join the cluster again\n", who.c_str());
  std::fflush(nullptr);
  if (!args.empty()) {
    // Descriptors opened without O_CLOEXEC (CAF's sockets, UCX's) must not live on in the new image.
    ::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);  // the new image blocks what it needs itself
    ::execv("/proc/self/exe", argv.data());
  }
  std::fprintf(stderr, "[%s] cannot restart this process (%s); exiting\n", who.c_str(),
               args.empty() ? "no command line in /proc/self/cmdline" : std::strerror(errno));
  std::fflush(nullptr);
  std::_Exit(1);
}

}  // namespace troupe
