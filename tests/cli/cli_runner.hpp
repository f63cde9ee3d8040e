#pragma once
// Runs the built `troupe` binary as a user would and captures what it prints.
#include <string>

namespace troupe::test {

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs build/bin/troupe with `args` (a shell-quoted string).
CommandResult run_troupe(const std::string& args);

}  // namespace troupe::test
