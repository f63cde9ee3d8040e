#include "kernels/thread_pool.hpp"

#include <immintrin.h>

#include <cstdlib>

#include "kernels/error.hpp"

namespace troupe {

namespace {
thread_local ThreadPool* tls_pool = nullptr;
constexpr int kSpinIterations = 20000;  // ~tens of microseconds before a worker sleeps
}  // namespace

int ThreadPool::default_thread_count() {
  if (const char* env = std::getenv("TROUPE_NUM_THREADS"); env && *env) {
    int n = std::atoi(env);
    if (n < 1 || n > 1024) fail("TROUPE_NUM_THREADS={} (expected 1..1024)", env);
    return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? int(hc) : 1;
}

ThreadPool& ThreadPool::current() {
  if (tls_pool) return *tls_pool;
  static ThreadPool process_pool(default_thread_count());
  return process_pool;
}

ThreadPool::ThreadPool(int num_threads) : num_threads_(num_threads < 1 ? 1 : num_threads) {
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run_chunk(int index) {
  int64_t begin = int64_t(index) * job_chunk_;
  int64_t end = std::min(job_n_, begin + job_chunk_);
  if (begin < end) (*job_)(begin, end);
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spins < kSpinIterations) {
      _mm_pause();
      ++spins;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock lock(mutex_);
      sleepers_.fetch_add(1);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
      sleepers_.fetch_sub(1);
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_) return;
    run_chunk(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int64_t chunks_of_grain = (n + grain - 1) / grain;
  int threads = int(std::min<int64_t>(num_threads_, chunks_of_grain));
  if (threads <= 1) {
    fn(0, n);
    return;
  }
  std::lock_guard submit(submit_mutex_);
  job_ = &fn;
  job_n_ = n;
  job_chunk_ = (chunks_of_grain + num_threads_ - 1) / num_threads_ * grain;
  pending_.store(num_threads_ - 1, std::memory_order_release);
  {
    std::lock_guard lock(mutex_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  if (sleepers_.load() > 0) wake_.notify_all();
  run_chunk(0);
  while (pending_.load(std::memory_order_acquire) > 0) _mm_pause();
}

ScopedThreadPool::ScopedThreadPool(ThreadPool& pool) : previous_(tls_pool) { tls_pool = &pool; }
ScopedThreadPool::~ScopedThreadPool() { tls_pool = previous_; }

}  // namespace troupe
