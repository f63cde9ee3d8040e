#include "comm/comm_timeout.hpp"

#include <sched.h>
#include <time.h>

#include <algorithm>
#include <cstdlib>

#include "kernels/error.hpp"

namespace troupe {

std::chrono::milliseconds default_comm_timeout() {
  if (const char* env = std::getenv("TROUPE_COMM_TIMEOUT_MS")) {
    char* end = nullptr;
    long ms = std::strtol(env, &end, 10);
    if (!*env || *end || ms <= 0) fail("TROUPE_COMM_TIMEOUT_MS='{}' is not a positive number of milliseconds", env);
    return std::chrono::milliseconds(ms);
  }
  return std::chrono::milliseconds(60000);
}

int Deadline::remaining_ms() const {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end_ - CommClock::now()).count();
  return int(std::clamp<long long>(left, 0, 1 << 30));
}

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

void nap_microseconds(int us) {
  if (us <= 0) {
    sched_yield();
    return;
  }
  timespec ts{0, long(us) * 1000};
  nanosleep(&ts, nullptr);
}

}  // namespace troupe
