#pragma once
// TensorParallelOps: the two collectives a tensor-parallel forward pass needs, as seen from the
// model. comm/ provides the implementation over a GroupCoordinator; with tp_size 1 the model
// never calls them.
#include <vector>

#include "kernels/tensor.hpp"

namespace troupe {

class TensorParallelOps {
 public:
  virtual ~TensorParallelOps() = default;
  // In place: every rank ends with the elementwise sum over the group.
  virtual void all_reduce_sum(Tensor& t) = 0;
  // Concatenates each rank's [M, n_r] f32 along the last axis (rank order); `widths` are the n_r.
  virtual Tensor all_gather_columns(const Tensor& local, const std::vector<int64_t>& widths) = 0;
};

}  // namespace troupe
