#pragma once
// DeviceCommunicator: the one interface every backend (shm, ucx, nccl) implements for a group.
// All ranks of a group call the same collectives in the same order. Ranks here are ranks *in the
// group* (0..size-1); GroupCoordinator maps global ranks onto them.
//
// The public methods validate arguments once for every backend, then call the backend's do_*.
// A communicator is driven by one thread at a time; the *_async variants queue the op on the
// communicator's own worker thread (in order) and return a handle to wait on. A blocking call made
// while async ops are pending first waits for them, so the op order stays the same on every rank;
// send/recv are the exception (a blocking recv must be able to complete a queued send_async), so
// backends allow one p2p op on the caller's thread concurrent with the async worker.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "comm/comm_timeout.hpp"
#include "comm/reduce_ops.hpp"
#include "kernels/tensor.hpp"

namespace troupe {

// What every backend needs to know about its group.
struct CommGroupInfo {
  CommGroupInfo() = default;
  CommGroupInfo(std::string name, int rank, int size, std::chrono::milliseconds timeout = default_comm_timeout())
      : name(std::move(name)), rank(rank), size(size), timeout(timeout) {}

  std::string name;  // "tp", "pp", ... (appears in every error message)
  int rank = 0;      // rank in the group
  int size = 1;
  std::chrono::milliseconds timeout = default_comm_timeout();  // per wait without progress
};

// Completion of an asynchronous op. wait() rethrows the op's error.
class CommHandle {
 public:
  CommHandle() = default;
  explicit CommHandle(std::shared_future<void> done) : done_(std::move(done)) {}
  void wait() const;
  bool ready() const;

 private:
  std::shared_future<void> done_;
};

class DeviceCommunicator {
 public:
  explicit DeviceCommunicator(CommGroupInfo info);
  virtual ~DeviceCommunicator();
  DeviceCommunicator(const DeviceCommunicator&) = delete;
  DeviceCommunicator& operator=(const DeviceCommunicator&) = delete;

  virtual const char* backend() const = 0;
  const std::string& group() const { return info_.name; }
  int rank() const { return info_.rank; }
  int size() const { return info_.size; }
  std::chrono::milliseconds timeout() const { return info_.timeout; }

  // In place: every rank ends with op over all ranks' tensors.
  void all_reduce(Tensor& tensor, ReduceOp op = ReduceOp::Sum);
  // output holds size() copies of input's shape, rank-major (output.numel() == size * input.numel()).
  void all_gather(const Tensor& input, Tensor& output);
  // input is size() blocks rank-major; rank r receives op over all ranks of block r.
  void reduce_scatter(const Tensor& input, Tensor& output, ReduceOp op = ReduceOp::Sum);
  void broadcast(Tensor& tensor, int root);
  // Uneven all-to-all over dim 0: send_rows[j] rows of input go to rank j (in order), recv_rows[j]
  // rows of output come from rank j. Rows are input.numel() / input.size(0) elements.
  void all_to_all(const Tensor& input, const std::vector<int64_t>& send_rows, Tensor& output,
                  const std::vector<int64_t>& recv_rows);
  void send(const Tensor& tensor, int dst);
  void recv(Tensor& tensor, int src);
  void barrier();

  CommHandle all_reduce_async(Tensor tensor, ReduceOp op = ReduceOp::Sum);
  CommHandle all_gather_async(Tensor input, Tensor output);
  CommHandle reduce_scatter_async(Tensor input, Tensor output, ReduceOp op = ReduceOp::Sum);
  CommHandle broadcast_async(Tensor tensor, int root);
  CommHandle all_to_all_async(Tensor input, std::vector<int64_t> send_rows, Tensor output,
                              std::vector<int64_t> recv_rows);
  CommHandle send_async(Tensor tensor, int dst);
  CommHandle recv_async(Tensor tensor, int src);

 protected:
  // Backends implement these; arguments are already validated (contiguous, sizes agree).
  virtual void do_all_reduce(Tensor& tensor, ReduceOp op) = 0;
  virtual void do_all_gather(const Tensor& input, Tensor& output) = 0;
  virtual void do_reduce_scatter(const Tensor& input, Tensor& output, ReduceOp op) = 0;
  virtual void do_broadcast(Tensor& tensor, int root) = 0;
  virtual void do_all_to_all(const Tensor& input, const std::vector<int64_t>& send_rows, Tensor& output,
                             const std::vector<int64_t>& recv_rows) = 0;
  virtual void do_send(const Tensor& tensor, int dst) = 0;
  virtual void do_recv(Tensor& tensor, int src) = 0;
  virtual void do_barrier() = 0;
  // Backends that need it (nccl) override to accept device tensors.
  virtual bool accepts(const Tensor& tensor) const { return tensor.device().is_cpu(); }

  // Backends call this from their destructor so the worker never runs a half-destroyed object.
  void stop_async_worker();

  CommGroupInfo info_;

 private:
  void check_tensor(const Tensor& t, const char* op, const char* which) const;
  void check_peer(int peer, const char* op, const char* which) const;
  void validate_all_reduce(const Tensor& tensor) const;
  void validate_all_gather(const Tensor& input, const Tensor& output) const;
  void validate_reduce_scatter(const Tensor& input, const Tensor& output) const;
  void validate_all_to_all(const Tensor& input, const std::vector<int64_t>& send_rows, const Tensor& output,
                           const std::vector<int64_t>& recv_rows) const;
  void validate_p2p(const Tensor& tensor, int peer, const char* op) const;
  CommHandle enqueue(std::function<void()> work);
  void drain_async();
  void worker_loop();

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<void()>> queue_;
  int in_flight_ = 0;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace troupe
