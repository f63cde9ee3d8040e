#include "comm/ucx_communicator.hpp"

#include <cstring>

#include "kernels/error.hpp"

namespace troupe {

namespace {

// Tag layout: kind (4 bits) | op sequence (24) | step within the op (16) | source rank (20).
enum : uint64_t { kCollective = 1, kPointToPoint = 2 };

std::vector<int64_t> segment_offsets(int64_t n, int parts) {
  std::vector<int64_t> off(size_t(parts) + 1);
  for (int j = 0; j <= parts; ++j) off[size_t(j)] = n * j / parts;
  return off;
}

}  // namespace

UcxCommunicator::UcxCommunicator(UcxOptions options, const Bootstrap& bootstrap)
    : DeviceCommunicator(options.info), options_(std::move(options)) {
  if (size() > (1 << 20)) fail("ucx group '{}': {} ranks exceed the tag layout's 2^20", group(), size());
  worker_ = std::make_unique<UcxWorker>(fmt::format("ucx group '{}'", group()), rank(), size(), true, false,
                                        options_.detect_peer_failure, options_.resources);
  worker_->connect_all(bootstrap);
  sent_.assign(size_t(size()), 0);
  received_.assign(size_t(size()), 0);
}

UcxCommunicator::~UcxCommunicator() { stop_async_worker(); }

uint64_t UcxCommunicator::tag(uint64_t kind, uint64_t seq, uint64_t step, int src) const {
  return kind << 60 | (seq & 0xffffff) << 36 | (step & 0xffff) << 20 | uint64_t(src);
}

void UcxCommunicator::exchange(const char* op, uint64_t seq, uint64_t step, int dst, const void* send_buf,
                               size_t send_bytes, int src, void* recv_buf, size_t recv_bytes) {
  std::vector<UcxRequest> reqs;
  reqs.push_back(worker_->recv(src, recv_buf, recv_bytes, tag(kCollective, seq, step, src)));
  reqs.push_back(worker_->send(dst, send_buf, send_bytes, tag(kCollective, seq, step, rank())));
  worker_->wait_all(reqs, op, timeout());
}

void UcxCommunicator::ring_reduce_scatter(const char* op, char* data, const std::vector<int64_t>& off, DType dtype,
                                          ReduceOp reduce, uint64_t seq) {
  const int n = size(), r = rank();
  size_t elem = dtype_size(dtype);
  int64_t max_seg = 0;
  for (int j = 0; j < n; ++j) max_seg = std::max(max_seg, off[size_t(j) + 1] - off[size_t(j)]);
  scratch_.resize(size_t(max_seg) * elem);
  for (int s = 0; s < n - 1; ++s) {
    int send_seg = (r - s - 1 + 2 * n) % n, recv_seg = (r - s - 2 + 2 * n) % n;
    int64_t send_len = off[size_t(send_seg) + 1] - off[size_t(send_seg)];
    int64_t recv_len = off[size_t(recv_seg) + 1] - off[size_t(recv_seg)];
    exchange(op, seq, uint64_t(s), (r + 1) % n, data + size_t(off[size_t(send_seg)]) * elem, size_t(send_len) * elem,
             (r + n - 1) % n, scratch_.data(), size_t(recv_len) * elem);
    reduce_into(data + size_t(off[size_t(recv_seg)]) * elem, scratch_.data(), recv_len, dtype, reduce);
  }
}

void UcxCommunicator::ring_all_gather(const char* op, char* data, const std::vector<int64_t>& off, size_t elem,
                                      uint64_t seq, uint64_t first_step) {
  const int n = size(), r = rank();
  for (int s = 0; s < n - 1; ++s) {
    int send_seg = (r - s + n) % n, recv_seg = (r - s - 1 + n) % n;
    exchange(op, seq, first_step + uint64_t(s), (r + 1) % n, data + size_t(off[size_t(send_seg)]) * elem,
             size_t(off[size_t(send_seg) + 1] - off[size_t(send_seg)]) * elem, (r + n - 1) % n,
             data + size_t(off[size_t(recv_seg)]) * elem,
             size_t(off[size_t(recv_seg) + 1] - off[size_t(recv_seg)]) * elem);
  }
}

void UcxCommunicator::do_all_reduce(Tensor& tensor, ReduceOp op) {
  uint64_t seq = seq_++;
  const int n = size();
  if (n == 1) return;
  char* data = static_cast<char*>(tensor.raw());
  bool power_of_two = (n & (n - 1)) == 0;
  if (power_of_two && tensor.nbytes() < options_.recursive_doubling_max_bytes) {
    // Recursive doubling: log2(n) exchanges of the whole buffer. op(a, b) == op(b, a) exactly for
    // sum and max, so both partners compute the same bits and all ranks end identical.
    scratch_.resize(tensor.nbytes());
    uint64_t step = 0;
    for (int mask = 1; mask < n; mask <<= 1, ++step) {
      int peer = rank() ^ mask;
      exchange("all_reduce", seq, step, peer, data, tensor.nbytes(), peer, scratch_.data(), tensor.nbytes());
      reduce_into(data, scratch_.data(), tensor.numel(), tensor.dtype(), op);
    }
    return;
  }
  auto off = segment_offsets(tensor.numel(), n);
  ring_reduce_scatter("all_reduce", data, off, tensor.dtype(), op, seq);
  ring_all_gather("all_reduce", data, off, dtype_size(tensor.dtype()), seq, uint64_t(n));
}

void UcxCommunicator::do_all_gather(const Tensor& input, Tensor& output) {
  uint64_t seq = seq_++;
  char* out = static_cast<char*>(output.raw());
  std::memcpy(out + size_t(rank()) * input.nbytes(), input.raw(), input.nbytes());
  ring_all_gather("all_gather", out, segment_offsets(output.numel(), size()), dtype_size(input.dtype()), seq, 0);
}

void UcxCommunicator::do_reduce_scatter(const Tensor& input, Tensor& output, ReduceOp op) {
  uint64_t seq = seq_++;
  Tensor work = input.clone();  // the ring reduces in place
  auto off = segment_offsets(input.numel(), size());
  ring_reduce_scatter("reduce_scatter", static_cast<char*>(work.raw()), off, input.dtype(), op, seq);
  std::memcpy(output.raw(), static_cast<char*>(work.raw()) + output.nbytes() * size_t(rank()), output.nbytes());
}

void UcxCommunicator::do_broadcast(Tensor& tensor, int root) {
  uint64_t seq = seq_++;
  std::vector<UcxRequest> reqs;
  if (rank() == root) {
    for (int j = 0; j < size(); ++j)
      if (j != root) reqs.push_back(worker_->send(j, tensor.raw(), tensor.nbytes(), tag(kCollective, seq, 0, root)));
  } else {
    reqs.push_back(worker_->recv(root, tensor.raw(), tensor.nbytes(), tag(kCollective, seq, 0, root)));
  }
  worker_->wait_all(reqs, "broadcast", timeout());
}

void UcxCommunicator::do_all_to_all(const Tensor& input, const std::vector<int64_t>& send_rows, Tensor& output,
                                    const std::vector<int64_t>& recv_rows) {
  uint64_t seq = seq_++;
  size_t row = input.size(0) ? input.nbytes() / size_t(input.size(0))
                             : (output.size(0) ? output.nbytes() / size_t(output.size(0)) : 0);
  const char* in = static_cast<const char*>(input.raw());
  char* out = static_cast<char*>(output.raw());
  std::vector<UcxRequest> reqs;
  size_t s = 0, r = 0;
  for (int j = 0; j < size(); ++j) {
    size_t send_bytes = size_t(send_rows[size_t(j)]) * row, recv_bytes = size_t(recv_rows[size_t(j)]) * row;
    if (j == rank()) {
      if (send_bytes != recv_bytes)
        fail("ucx group '{}' all_to_all: rank {} sends itself {} rows but expects {}", group(), j, send_rows[size_t(j)],
             recv_rows[size_t(j)]);
      std::memcpy(out + r, in + s, send_bytes);
    } else {
      // Zero-byte messages are still sent: a receiver expecting rows from a sender that sends none
      // then fails with a size mismatch instead of waiting for the timeout.
      reqs.push_back(worker_->recv(j, out + r, recv_bytes, tag(kCollective, seq, 0, j)));
      reqs.push_back(worker_->send(j, in + s, send_bytes, tag(kCollective, seq, 0, rank())));
    }
    s += send_bytes;
    r += recv_bytes;
  }
  worker_->wait_all(reqs, "all_to_all", timeout());
}

void UcxCommunicator::do_send(const Tensor& tensor, int dst) {
  UcxRequest req =
      worker_->send(dst, tensor.raw(), tensor.nbytes(), tag(kPointToPoint, sent_[size_t(dst)]++, 0, rank()));
  worker_->wait(req, "send", timeout());
}

void UcxCommunicator::do_recv(Tensor& tensor, int src) {
  UcxRequest req =
      worker_->recv(src, tensor.raw(), tensor.nbytes(), tag(kPointToPoint, received_[size_t(src)]++, 0, src));
  worker_->wait(req, "recv", timeout());
}

void UcxCommunicator::do_barrier() {
  // Dissemination: after round k every rank has heard (transitively) from 2^(k+1) ranks.
  uint64_t seq = seq_++;
  const int n = size();
  char token = 0, sink = 0;
  uint64_t step = 0;
  for (int k = 1; k < n; k <<= 1, ++step)
    exchange("barrier", seq, step, (rank() + k) % n, &token, 1, (rank() - k + n) % n, &sink, 1);
}

}  // namespace troupe
