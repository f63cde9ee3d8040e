#include "comm/device_communicator.hpp"

#include <numeric>

#include "kernels/error.hpp"

namespace troupe {

void CommHandle::wait() const {
  if (done_.valid()) done_.get();
}

bool CommHandle::ready() const {
  return !done_.valid() || done_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

DeviceCommunicator::DeviceCommunicator(CommGroupInfo info) : info_(std::move(info)) {
  if (info_.size < 1 || info_.rank < 0 || info_.rank >= info_.size)
    fail("group '{}': rank {} is outside a group of size {}", info_.name, info_.rank, info_.size);
}

DeviceCommunicator::~DeviceCommunicator() { stop_async_worker(); }

void DeviceCommunicator::stop_async_worker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void DeviceCommunicator::check_tensor(const Tensor& t, const char* op, const char* which) const {
  if (!t.defined()) fail("group '{}' {}: the {} tensor is undefined", group(), op, which);
  if (!t.is_contiguous()) fail("group '{}' {}: the {} tensor {} must be contiguous", group(), op, which, t.describe());
  if (!accepts(t))
    fail("group '{}' {}: the {} backend cannot use a tensor on {}", group(), op, backend(), t.device().str());
}

void DeviceCommunicator::check_peer(int peer, const char* op, const char* which) const {
  if (peer < 0 || peer >= size())
    fail("group '{}' {}: {} rank {} is outside the group of size {}", group(), op, which, peer, size());
}

void DeviceCommunicator::validate_all_reduce(const Tensor& tensor) const {
  check_tensor(tensor, "all_reduce", "input");
  check_reducible(tensor.dtype(), "all_reduce");
}

void DeviceCommunicator::validate_all_gather(const Tensor& input, const Tensor& output) const {
  check_tensor(input, "all_gather", "input");
  check_tensor(output, "all_gather", "output");
  if (output.dtype() != input.dtype() || output.numel() != input.numel() * size())
    fail("group '{}' all_gather: output {} must hold {} x input {}", group(), output.describe(), size(),
         input.describe());
}

void DeviceCommunicator::validate_reduce_scatter(const Tensor& input, const Tensor& output) const {
  check_tensor(input, "reduce_scatter", "input");
  check_tensor(output, "reduce_scatter", "output");
  check_reducible(input.dtype(), "reduce_scatter");
  if (output.dtype() != input.dtype() || input.numel() != output.numel() * size())
    fail("group '{}' reduce_scatter: input {} must hold {} x output {}", group(), input.describe(), size(),
         output.describe());
}

void DeviceCommunicator::validate_all_to_all(const Tensor& input, const std::vector<int64_t>& send_rows,
                                             const Tensor& output, const std::vector<int64_t>& recv_rows) const {
  check_tensor(input, "all_to_all", "input");
  check_tensor(output, "all_to_all", "output");
  if (send_rows.size() != size_t(size()) || recv_rows.size() != size_t(size()))
    fail("group '{}' all_to_all: {} send and {} recv splits, expected {} each", group(), send_rows.size(),
         recv_rows.size(), size());
  if (input.dim() == 0 || output.dim() == 0 || output.dtype() != input.dtype())
    fail("group '{}' all_to_all: input {} and output {} need a row dimension and one dtype", group(), input.describe(),
         output.describe());
  for (int j = 0; j < size(); ++j)
    if (send_rows[size_t(j)] < 0 || recv_rows[size_t(j)] < 0)
      fail("group '{}' all_to_all: negative split for rank {}", group(), j);
  int64_t in_rows = std::accumulate(send_rows.begin(), send_rows.end(), int64_t(0));
  int64_t out_rows = std::accumulate(recv_rows.begin(), recv_rows.end(), int64_t(0));
  int64_t row = input.size(0) ? input.numel() / input.size(0) : 0;
  int64_t out_row = output.size(0) ? output.numel() / output.size(0) : row;
  if (in_rows != input.size(0) || out_rows != output.size(0) || (out_rows && in_rows && row != out_row))
    fail("group '{}' all_to_all: splits send {} rows of {} and receive {} rows into {}", group(), in_rows,
         input.describe(), out_rows, output.describe());
}

void DeviceCommunicator::validate_p2p(const Tensor& tensor, int peer, const char* op) const {
  check_tensor(tensor, op, "data");
  check_peer(peer, op, "peer");
  if (peer == rank()) fail("group '{}' {}: rank {} cannot exchange with itself", group(), op, peer);
}

void DeviceCommunicator::all_reduce(Tensor& tensor, ReduceOp op) {
  validate_all_reduce(tensor);
  drain_async();
  do_all_reduce(tensor, op);
}

void DeviceCommunicator::all_gather(const Tensor& input, Tensor& output) {
  validate_all_gather(input, output);
  drain_async();
  do_all_gather(input, output);
}

void DeviceCommunicator::reduce_scatter(const Tensor& input, Tensor& output, ReduceOp op) {
  validate_reduce_scatter(input, output);
  drain_async();
  do_reduce_scatter(input, output, op);
}

void DeviceCommunicator::broadcast(Tensor& tensor, int root) {
  check_tensor(tensor, "broadcast", "input");
  check_peer(root, "broadcast", "root");
  drain_async();
  do_broadcast(tensor, root);
}

void DeviceCommunicator::all_to_all(const Tensor& input, const std::vector<int64_t>& send_rows, Tensor& output,
                                    const std::vector<int64_t>& recv_rows) {
  validate_all_to_all(input, send_rows, output, recv_rows);
  drain_async();
  do_all_to_all(input, send_rows, output, recv_rows);
}

void DeviceCommunicator::send(const Tensor& tensor, int dst) {
  validate_p2p(tensor, dst, "send");
  do_send(tensor, dst);  // no drain: a queued send_async to another peer may be what this waits on
}

void DeviceCommunicator::recv(Tensor& tensor, int src) {
  validate_p2p(tensor, src, "recv");
  do_recv(tensor, src);
}

void DeviceCommunicator::barrier() {
  drain_async();
  do_barrier();
}

// Async variants validate on the caller's thread (errors surface at the call), then queue the op.
CommHandle DeviceCommunicator::all_reduce_async(Tensor tensor, ReduceOp op) {
  validate_all_reduce(tensor);
  return enqueue([this, tensor, op]() mutable { do_all_reduce(tensor, op); });
}

CommHandle DeviceCommunicator::all_gather_async(Tensor input, Tensor output) {
  validate_all_gather(input, output);
  return enqueue([this, input, output]() mutable { do_all_gather(input, output); });
}

CommHandle DeviceCommunicator::reduce_scatter_async(Tensor input, Tensor output, ReduceOp op) {
  validate_reduce_scatter(input, output);
  return enqueue([this, input, output, op]() mutable { do_reduce_scatter(input, output, op); });
}

CommHandle DeviceCommunicator::broadcast_async(Tensor tensor, int root) {
  check_tensor(tensor, "broadcast", "input");
  check_peer(root, "broadcast", "root");
  return enqueue([this, tensor, root]() mutable { do_broadcast(tensor, root); });
}

CommHandle DeviceCommunicator::all_to_all_async(Tensor input, std::vector<int64_t> send_rows, Tensor output,
                                                std::vector<int64_t> recv_rows) {
  validate_all_to_all(input, send_rows, output, recv_rows);
  return enqueue(
      [this, input, send_rows, output, recv_rows]() mutable { do_all_to_all(input, send_rows, output, recv_rows); });
}

CommHandle DeviceCommunicator::send_async(Tensor tensor, int dst) {
  validate_p2p(tensor, dst, "send");
  return enqueue([this, tensor, dst]() { do_send(tensor, dst); });
}

CommHandle DeviceCommunicator::recv_async(Tensor tensor, int src) {
  validate_p2p(tensor, src, "recv");
  return enqueue([this, tensor, src]() mutable { do_recv(tensor, src); });
}

CommHandle DeviceCommunicator::enqueue(std::function<void()> work) {
  std::packaged_task<void()> task(std::move(work));
  CommHandle handle(task.get_future().share());
  {
    std::lock_guard lock(mutex_);
    if (stopping_) fail("group '{}': async op queued on a communicator being destroyed", group());
    if (!worker_.joinable()) worker_ = std::thread([this] { worker_loop(); });
    queue_.push_back(std::move(task));
    ++in_flight_;
  }
  cv_.notify_all();
  return handle;
}

void DeviceCommunicator::drain_async() {
  std::unique_lock lock(mutex_);
  if (in_flight_ == 0) return;  // the common, lock-only fast path
  cv_.wait(lock, [this] { return in_flight_ == 0; });
}

void DeviceCommunicator::worker_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping with nothing left
    auto task = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    task();  // exceptions land in the handle's future
    lock.lock();
    --in_flight_;
    cv_.notify_all();
  }
}

}  // namespace troupe
