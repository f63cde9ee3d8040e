#include "cli/progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace troupe::cli {

Progress::Progress(std::string what) : what_(std::move(what)), tty_(::isatty(2)) {}

void Progress::update(int64_t done, int64_t total) {
  if (total <= 0 || std::chrono::steady_clock::now() - start_ < std::chrono::milliseconds(500)) return;
  int decile = int(done * 10 / total);
  if (tty_) {
    std::fprintf(stderr, "\r%s %lld/%lld", what_.c_str(), (long long)done, (long long)total);
    open_ = true;
  } else if (decile != last_decile_) {
    std::fprintf(stderr, "%s %lld/%lld\n", what_.c_str(), (long long)done, (long long)total);
  }
  last_decile_ = decile;
}

void Progress::finish() {
  if (open_) std::fprintf(stderr, "\n");
  open_ = false;
}

}  // namespace troupe::cli
