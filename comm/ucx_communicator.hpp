#pragma once
// UcxCommunicator: collectives over the UCX tag API, for ranks on different hosts (and any host as
// a fallback). all_reduce uses recursive doubling for small messages on power-of-two groups
// (log2(n) latency-bound steps) and a ring (reduce-scatter then all-gather, bandwidth-optimal)
// otherwise; all_gather and reduce_scatter are rings; all_to_all posts every pairwise transfer at
// once; barrier is a dissemination barrier.
#include <memory>

#include "comm/device_communicator.hpp"
#include "comm/ucx_worker.hpp"

namespace troupe {

struct UcxOptions {
  CommGroupInfo info;
  // all_reduce of fewer bytes than this uses recursive doubling (when size() is a power of two).
  size_t recursive_doubling_max_bytes = 64 << 10;
  // UCX peer error handling: a dead peer fails ops at once instead of after the timeout, at the
  // price of the shared-memory transports between local ranks (see ucx_worker.hpp).
  bool detect_peer_failure = false;
  UcxResources resources{};  // transports and devices UCX may use
};

class UcxCommunicator final : public DeviceCommunicator {
 public:
  // Connects to every rank of the group (worker addresses exchanged through bootstrap).
  UcxCommunicator(UcxOptions options, const Bootstrap& bootstrap);
  ~UcxCommunicator() override;
  const char* backend() const override { return "ucx"; }

 protected:
  void do_all_reduce(Tensor& tensor, ReduceOp op) override;
  void do_all_gather(const Tensor& input, Tensor& output) override;
  void do_reduce_scatter(const Tensor& input, Tensor& output, ReduceOp op) override;
  void do_broadcast(Tensor& tensor, int root) override;
  void do_all_to_all(const Tensor& input, const std::vector<int64_t>& send_rows, Tensor& output,
                     const std::vector<int64_t>& recv_rows) override;
  void do_send(const Tensor& tensor, int dst) override;
  void do_recv(Tensor& tensor, int src) override;
  void do_barrier() override;

 private:
  uint64_t tag(uint64_t kind, uint64_t seq, uint64_t step, int src) const;
  // Sends `send_bytes` to `dst` and receives `recv_bytes` from `src` concurrently (one ring step).
  void exchange(const char* op, uint64_t op_tag_seq, uint64_t step, int dst, const void* send_buf, size_t send_bytes,
                int src, void* recv_buf, size_t recv_bytes);
  // Ring reduce-scatter in place over `data` split into size() segments; afterwards rank r holds
  // the fully reduced segment r. Segment j is [offsets[j], offsets[j+1]) elements.
  void ring_reduce_scatter(const char* op, char* data, const std::vector<int64_t>& offsets, DType dtype,
                           ReduceOp reduce, uint64_t seq);
  // Ring all-gather in place: rank r contributes segment r, everyone ends with all segments.
  void ring_all_gather(const char* op, char* data, const std::vector<int64_t>& offsets, size_t elem, uint64_t seq,
                       uint64_t first_step);

  UcxOptions options_;
  std::unique_ptr<UcxWorker> worker_;
  uint64_t seq_ = 0;                       // collectives issued (same order on every rank)
  std::vector<uint64_t> sent_, received_;  // p2p messages per peer
  std::vector<char> scratch_;
};

}  // namespace troupe
