#include "actors/exit_deadline.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

namespace troupe {

void arm_exit_deadline(std::chrono::milliseconds grace, int exit_code, const std::string& what) {
  static std::atomic<bool> armed{false};
  if (armed.exchange(true)) return;
  std::thread([grace, exit_code, what] {
    std::this_thread::sleep_for(grace);
    std::fprintf(stderr, "[troupe] %s: teardown did not finish within %lld ms; exiting with status %d\n", what.c_str(),
                 static_cast<long long>(grace.count()), exit_code);
    std::fflush(stderr);
    ::_exit(exit_code);
  }).detach();
}

}  // namespace troupe
