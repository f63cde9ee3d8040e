#pragma once
// CommunicatorTpOps: TensorParallelOps over a tp group's DeviceCommunicator (shm between local
// ranks, ucx across hosts, nccl on GPUs). Records the time spent in collectives so benchmarks can
// report the tensor-parallel overhead per step, and the all_to_all traffic of expert parallelism.
#include <memory>

#include "comm/device_communicator.hpp"
#include "model/tensor_parallel_ops.hpp"

namespace troupe {

class CommunicatorTpOps : public TensorParallelOps {
 public:
  explicit CommunicatorTpOps(std::shared_ptr<DeviceCommunicator> communicator) : comm_(std::move(communicator)) {}
  int rank() const override { return comm_->rank(); }
  int size() const override { return comm_->size(); }
  void all_reduce_sum(Tensor& t) override;
  Tensor all_gather_columns(const Tensor& local, const std::vector<int64_t>& widths) override;
  Tensor all_gather_rows(const Tensor& local, const std::vector<int64_t>& rows) override;
  Tensor all_to_all_rows(const Tensor& input, const std::vector<int64_t>& send_rows,
                         const std::vector<int64_t>& recv_rows) override;
  double seconds_in_collectives() const { return seconds_; }
  int64_t collectives() const { return count_; }
  // all_to_all only (part of the totals above): calls, seconds, bytes this rank sent to other ranks.
  struct AllToAllStats {
    int64_t calls = 0;
    double seconds = 0;
    int64_t bytes_sent = 0;
  };
  const AllToAllStats& all_to_all_stats() const { return a2a_; }
  void reset_counters() { seconds_ = 0, count_ = 0, a2a_ = {}; }

 private:
  std::shared_ptr<DeviceCommunicator> comm_;
  double seconds_ = 0;
  int64_t count_ = 0;
  AllToAllStats a2a_;
};

}  // namespace troupe
