#pragma once
// Deadlines for communication: every wait in comm/ is bounded so a dead or missing peer turns into
// a troupe::Error naming the group, the op and the rank instead of a hang.
#include <chrono>
#include <cstdint>

namespace troupe {

using CommClock = std::chrono::steady_clock;

// The default comm timeout: $TROUPE_COMM_TIMEOUT_MS when set, else 60 s (long enough for a slow
// first model load on a peer, short enough that a dead peer is noticed).
std::chrono::milliseconds default_comm_timeout();

class Deadline {
 public:
  explicit Deadline(std::chrono::milliseconds timeout) : timeout_(timeout), end_(CommClock::now() + timeout) {}
  bool expired() const { return CommClock::now() >= end_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  // Milliseconds left, clamped at 0 (for poll()).
  int remaining_ms() const;

 private:
  std::chrono::milliseconds timeout_;
  CommClock::time_point end_;
};

void cpu_relax();
void nap_microseconds(int us);

// Waits for `ready()` to become true: spins briefly (sub-microsecond wake-up for the shm fast
// path), then yields, then sleeps in short naps so an idle wait does not burn a core. Calls
// `on_slow()` about every 10 ms while waiting (liveness checks); returns false on timeout.
// `spins`: busy polls before the first yield (fewer when ranks outnumber cores).
template <typename Ready, typename OnSlow>
bool wait_until(Ready&& ready, const Deadline& deadline, OnSlow&& on_slow, int spins = 4096) {
  for (int i = 0; i < spins; ++i) {
    if (ready()) return true;
    cpu_relax();
  }
  auto start = CommClock::now();
  auto last_check = start;
  for (;;) {
    if (ready()) return true;
    auto now = CommClock::now();
    // For the first 2 ms nap 0 (sched_yield: lets the peer run on an oversubscribed host), then 50 us.
    nap_microseconds(now - start < std::chrono::milliseconds(2) ? 0 : 50);
    if (now - last_check > std::chrono::milliseconds(10)) {
      last_check = now;
      on_slow();
      if (deadline.expired()) return ready();
    }
  }
}

}  // namespace troupe
