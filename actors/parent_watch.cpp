#include "actors/parent_watch.hpp"

#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

extern char** environ;

namespace troupe {

void exit_with_parent_if_asked() {
  const char* found = std::getenv(kExitWithParentEnv);
  if (!found || !*found) return;
  const std::string value = found;
  ::unsetenv(kExitWithParentEnv);  // for this process only: what it starts has its own parent (itself)
  char* end = nullptr;
  const long parent = std::strtol(value.c_str(), &end, 10);
  if (*end != '\0' || parent <= 1) {
    std::fprintf(stderr, "troupe: %s=%s is not a process id; ignored\n", kExitWithParentEnv, value.c_str());
    return;
  }
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  // The parent may have ended before the signal was armed: then this process belongs to another.
  if (::getppid() != pid_t(parent)) {
    std::fprintf(stderr, "troupe: the process that started this one (pid %ld) has ended; exiting\n", parent);
    std::_Exit(1);
  }
}

ChildEnvironment::ChildEnvironment() {
  const std::string_view key = kExitWithParentEnv;
  for (char** e = environ; e && *e; ++e) {
    const std::string_view entry = *e;
    if (entry.size() > key.size() && entry.starts_with(key) && entry[key.size()] == '=') continue;
    entries_.emplace_back(entry);
  }
  entries_.push_back(std::string(key) + "=" + std::to_string(::getpid()));
  for (auto& s : entries_) pointers_.push_back(s.data());
  pointers_.push_back(nullptr);
}

}  // namespace troupe
