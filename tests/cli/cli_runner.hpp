#pragma once
// Runs the built `troupe` binary as a user would and captures what it prints, under a deadline
// (tests/child_process.hpp): a troupe process that hangs fails the calling test with its output.
#include <chrono>
#include <string>

namespace troupe::test {

struct CommandResult {
  int exit_code = -1;
  std::string out;     // stdout
  std::string err;     // stderr
  double seconds = 0;  // wall time of the run
};

// Runs build/bin/troupe with `args` (a shell-quoted string).
CommandResult run_troupe(const std::string& args, std::chrono::seconds deadline = std::chrono::seconds(300));

}  // namespace troupe::test
