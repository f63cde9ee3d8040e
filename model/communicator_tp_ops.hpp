#pragma once
// CommunicatorTpOps: TensorParallelOps over a tp group's DeviceCommunicator (shm between local
// ranks, ucx across hosts, nccl on GPUs). Records the time spent in collectives so benchmarks can
// report the tensor-parallel overhead per step.
#include <memory>

#include "comm/device_communicator.hpp"
#include "model/tensor_parallel_ops.hpp"

namespace troupe {

class CommunicatorTpOps : public TensorParallelOps {
 public:
  explicit CommunicatorTpOps(std::shared_ptr<DeviceCommunicator> communicator) : comm_(std::move(communicator)) {}
  void all_reduce_sum(Tensor& t) override;
  Tensor all_gather_columns(const Tensor& local, const std::vector<int64_t>& widths) override;
  double seconds_in_collectives() const { return seconds_; }
  int64_t collectives() const { return count_; }
  void reset_counters() { seconds_ = 0, count_ = 0; }

 private:
  std::shared_ptr<DeviceCommunicator> comm_;
  double seconds_ = 0;
  int64_t count_ = 0;
};

}  // namespace troupe
