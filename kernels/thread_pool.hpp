#pragma once
// ThreadPool: a fixed set of workers for data-parallel kernels. parallel_for splits [0, n) into a
// few contiguous chunks per thread that the caller and the workers claim one at a time (a thread
// the OS takes away delays one chunk, not the kernel); every index is computed by the same code
// whichever thread runs its chunk, so a kernel's result never depends on the thread count or on
// timing. Workers spin briefly (yielding now and then) before sleeping: a decode step issues
// hundreds of small kernels and a futex wake per kernel would dominate.
//
// Each thread has a "current" pool (default: the process pool sized by TROUPE_NUM_THREADS or the
// core count); a rank running in its own thread installs its own pool with ScopedThreadPool.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace troupe {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return num_threads_; }
  // Calls fn(begin, end) over disjoint chunks covering [0, n); chunks are multiples of `grain`
  // except the last. Returns when all chunks are done.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  static ThreadPool& current();
  static int default_thread_count();

 private:
  void worker_loop();
  // Claims and runs chunks of `generation`'s job until none is left.
  void run_chunks(uint64_t generation);

  int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  // High 32 bits: the generation of the job now published; low 32: how many of its chunks are
  // still unclaimed (chunk job_chunks_ - left is claimed next). Only a successful claim reads the
  // job's fields, so a worker that wakes late never sees a half-written job.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> done_{0};  // chunks of the current job finished
  std::atomic<bool> stop_{false};
  std::atomic<int> sleepers_{0};
  // The job of the current generation: written before it is published, stable until its last
  // chunk is done.
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0, job_chunk_ = 0, job_chunks_ = 0;
  std::mutex submit_mutex_;  // one parallel_for at a time per pool
};

// Installs `pool` as the current thread's pool for the lifetime of this object.
class ScopedThreadPool {
 public:
  explicit ScopedThreadPool(ThreadPool& pool);
  ~ScopedThreadPool();

 private:
  ThreadPool* previous_;
};

inline void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  ThreadPool::current().parallel_for(n, grain, fn);
}

}  // namespace troupe
