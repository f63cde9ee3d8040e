// ThreadPool: every index of a parallel_for runs exactly once, whatever the thread count, grain and
// timing (threads claim chunks; one that is descheduled mid-kernel leaves the rest to the others).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "kernels/thread_pool.hpp"

using namespace troupe;

TEST_CASE("thread pool: parallel_for covers every index of 0..n-1 exactly once for any thread count, size and grain") {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 2, 7, 64, 1000, 4099})
      for (int64_t grain : {1, 3, 16, 5000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int> bad_chunks{0};  // empty, or not starting on a grain boundary
        pool.parallel_for(n, grain, [&](int64_t begin, int64_t end) {
          if (begin >= end || begin % grain != 0) ++bad_chunks;
          for (int64_t i = begin; i < end; ++i) hits[size_t(i)]++;
        });
        CHECK(bad_chunks.load() == 0);
        int wrong = 0;
        for (auto& h : hits) wrong += h.load() != 1;
        CAPTURE(threads);
        CAPTURE(n);
        CAPTURE(grain);
        CHECK(wrong == 0);
      }
  }
}

TEST_CASE("thread pool: a chunk that stalls does not stop the others and back-to-back jobs never mix") {
  ThreadPool pool(4);
  std::atomic<int64_t> sum{0};
  for (int job = 0; job < 2000; ++job) {
    const int64_t n = 1 + job % 97;
    pool.parallel_for(n, 1, [&](int64_t begin, int64_t end) {
      // One chunk in every 200th job is slow, as if its thread were descheduled.
      if (job % 200 == 0 && begin == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      for (int64_t i = begin; i < end; ++i) sum += job * 1000 + i;
    });
  }
  int64_t expected = 0;
  for (int job = 0; job < 2000; ++job)
    for (int64_t i = 0; i < 1 + job % 97; ++i) expected += job * 1000 + i;
  CHECK(sum.load() == expected);
}
