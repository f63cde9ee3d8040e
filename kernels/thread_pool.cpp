#include "kernels/thread_pool.hpp"

#include <immintrin.h>

#include <cstdlib>

#include "kernels/error.hpp"

namespace troupe {

namespace {
thread_local ThreadPool* tls_pool = nullptr;
// A worker spins this long for the next kernel before it sleeps (a decode step's kernels come
// microseconds apart; a futex wake per kernel would dominate). Every kYieldEvery pauses a spinning
// thread yields: on an oversubscribed machine (HTTP threads, other ranks) a waiting thread must not
// hold the core that the thread it waits for, or any other runnable thread, needs.
constexpr int kSpinIterations = 20000;
constexpr int kYieldEvery = 128;
// parallel_for cuts its range into this many chunks per thread, which threads claim one at a time:
// a thread that is descheduled mid-kernel delays only its current chunk; the others take the rest.
constexpr int64_t kChunksPerThread = 4;

void spin_once(int spins) {
  if (spins % kYieldEvery == kYieldEvery - 1)
    std::this_thread::yield();
  else
    _mm_pause();
}
}  // namespace

int ThreadPool::default_thread_count() {
  if (const char* env = std::getenv("TROUPE_NUM_THREADS"); env && *env) {
    int n = std::atoi(env);
    if (n < 1 || n > 1024) fail("TROUPE_NUM_THREADS={} (expected 1..1024)", env);
    return n;
  }
  return std::max(1, int(std::thread::hardware_concurrency()));  // 0 when unknown
}

ThreadPool& ThreadPool::current() {
  if (tls_pool) return *tls_pool;
  static ThreadPool process_pool(default_thread_count());
  return process_pool;
}

ThreadPool::ThreadPool(int num_threads) : num_threads_(num_threads < 1 ? 1 : num_threads) {
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    claim_.fetch_add(uint64_t(1) << 32);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run_chunks(uint64_t generation) {
  for (uint64_t state = claim_.load(std::memory_order_acquire);;) {
    const int64_t left = int64_t(state & 0xffffffff);
    if (state >> 32 != generation || left == 0) return;
    if (!claim_.compare_exchange_weak(state, state - 1, std::memory_order_acq_rel)) continue;
    // Claimed: the job's fields stay put until this chunk is done.
    const int64_t begin = (job_chunks_ - left) * job_chunk_;
    (*job_)(begin, std::min(job_n_, begin + job_chunk_));
    done_.fetch_add(1, std::memory_order_acq_rel);
    state = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    auto published = [&] { return claim_.load(std::memory_order_acquire) >> 32 != seen; };
    for (int spins = 0; !published() && spins < kSpinIterations;) spin_once(spins++);
    if (!published()) {
      std::unique_lock lock(mutex_);
      sleepers_.fetch_add(1);
      wake_.wait(lock, published);
      sleepers_.fetch_sub(1);
    }
    if (stop_) return;
    seen = claim_.load(std::memory_order_acquire) >> 32;
    run_chunks(seen);
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int64_t chunks_of_grain = (n + grain - 1) / grain;
  if (num_threads_ <= 1 || chunks_of_grain <= 1) {
    fn(0, n);
    return;
  }
  std::lock_guard submit(submit_mutex_);
  job_ = &fn;
  job_n_ = n;
  job_chunk_ = (chunks_of_grain + kChunksPerThread * num_threads_ - 1) / (kChunksPerThread * num_threads_) * grain;
  job_chunks_ = (n + job_chunk_ - 1) / job_chunk_;
  done_.store(0, std::memory_order_relaxed);
  const uint64_t generation = ((claim_.load(std::memory_order_relaxed) >> 32) + 1) & 0xffffffff;  // wraps
  {
    std::lock_guard lock(mutex_);
    claim_.store(generation << 32 | uint64_t(job_chunks_), std::memory_order_release);
  }
  if (sleepers_.load() > 0) wake_.notify_all();
  run_chunks(generation);
  for (int spins = 0; done_.load(std::memory_order_acquire) < job_chunks_;) spin_once(spins++);
}

ScopedThreadPool::ScopedThreadPool(ThreadPool& pool) : previous_(tls_pool) { tls_pool = &pool; }
ScopedThreadPool::~ScopedThreadPool() { tls_pool = previous_; }

}  // namespace troupe
