#include "tests/cli/cli_runner.hpp"

#include "tests/child_process.hpp"
#include "tests/test_paths.hpp"

namespace troupe::test {

CommandResult run_troupe(const std::string& args, std::chrono::seconds deadline) {
  auto child = run_shell("exec " + shell_quoted((binary_dir() / "troupe").string()) + " " + args, deadline);
  require_no_timeout(child);
  return {child.exit_code, std::move(child.out), std::move(child.err), child.seconds};
}

}  // namespace troupe::test
