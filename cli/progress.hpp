#pragma once
// Progress lines on stderr for long CLI work (weight loading, benchmarks): redrawn in place on a
// terminal, printed every ~10% otherwise so logs stay short. Silent for the first half second, so
// quick work prints nothing.
#include <chrono>
#include <cstdint>
#include <string>

namespace troupe::cli {

class Progress {
 public:
  explicit Progress(std::string what);
  void update(int64_t done, int64_t total);
  void finish();

 private:
  std::string what_;
  bool tty_;
  int last_decile_ = -1;
  bool open_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace troupe::cli
