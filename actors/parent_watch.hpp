#pragma once
// A troupe process that must not outlive the process that started it. Tests, benchmarks and
// `troupe serve --config` start `troupe cluster` (and the tests any troupe command) with
// TROUPE_EXIT_WITH_PARENT=<their pid> in the environment; at start such a child asks the kernel for
// SIGTERM when that parent ends (PR_SET_PDEATHSIG) and exits at once if the parent is already gone.
// SIGTERM takes the child's orderly, deadline-bounded exit path (exit_deadline.hpp), which stops
// what it started in turn. Without this, a parent that dies abruptly (SIGKILL, a sanitizer's abort)
// left its cluster running for ever, holding ports, shared memory and the parent's output pipe.
//
// The signal follows the thread that spawned the child: spawn from a thread that lives as long as
// the parent process (the main thread, in every caller here).
#include <string>
#include <vector>

namespace troupe {

inline constexpr const char* kExitWithParentEnv = "TROUPE_EXIT_WITH_PARENT";

// Called first thing in main(), before any thread starts: arms the parent-death signal when the
// environment asks for it, and removes the variable (this process's children are not bound to it).
void exit_with_parent_if_asked();

// This process's environment plus TROUPE_EXIT_WITH_PARENT=<this pid> (replacing any inherited
// value), for posix_spawn. The strings own the storage; pointers() gives the NULL-terminated array.
class ChildEnvironment {
 public:
  ChildEnvironment();
  char* const* pointers() { return pointers_.data(); }

 private:
  std::vector<std::string> entries_;
  std::vector<char*> pointers_;
};

}  // namespace troupe
