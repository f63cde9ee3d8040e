#pragma once
// TensorParallelOps: the collectives a tensor-parallel (and expert-parallel) forward pass needs,
// as seen from the model. comm/ provides the implementation over a GroupCoordinator; with tp_size 1
// the model never calls them.
#include <vector>

#include "kernels/tensor.hpp"

namespace troupe {

class TensorParallelOps {
 public:
  virtual ~TensorParallelOps() = default;
  virtual int rank() const = 0;  // in the group
  virtual int size() const = 0;
  // In place: every rank ends with the elementwise sum over the group.
  virtual void all_reduce_sum(Tensor& t) = 0;
  // Concatenates each rank's [M, n_r] f32 along the last axis (rank order); `widths` are the n_r.
  virtual Tensor all_gather_columns(const Tensor& local, const std::vector<int64_t>& widths) = 0;
  // Concatenates each rank's [n_r, C] f32 along the first axis (rank order); `rows` are the n_r.
  virtual Tensor all_gather_rows(const Tensor& local, const std::vector<int64_t>& rows) = 0;
  // Uneven all-to-all of [N, C] f32 rows (the expert-parallel dispatch): send_rows[j] rows of
  // `input` go to rank j in order; returns the rows received, recv_rows[j] of them from rank j.
  virtual Tensor all_to_all_rows(const Tensor& input, const std::vector<int64_t>& send_rows,
                                 const std::vector<int64_t>& recv_rows) = 0;
};

}  // namespace troupe
