#include "tests/cli/cli_runner.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "tests/test_paths.hpp"

namespace troupe::test {

CommandResult run_troupe(const std::string& args) {
  std::string err_path = "/tmp/troupe_cli_err_" + std::to_string(::getpid());
  std::string cmd = (binary_dir() / "troupe").string() + " " + args + " 2>" + err_path;
  CommandResult r;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.out.append(buf, n);
  int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_path);
  std::stringstream ss;
  ss << in.rdbuf();
  r.err = ss.str();
  std::remove(err_path.c_str());
  return r;
}

}  // namespace troupe::test
