#include "model/communicator_tp_ops.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>

#include "kernels/error.hpp"

namespace troupe {

namespace {
struct Timer {
  double& total;
  int64_t& count;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  ~Timer() {
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++count;
  }
};
}  // namespace

void CommunicatorTpOps::all_reduce_sum(Tensor& t) {
  Timer timer{seconds_, count_};
  Tensor c = t.contiguous();
  comm_->all_reduce(c, ReduceOp::Sum);
  if (c.raw() != t.raw()) t.copy_from(c);
}

Tensor CommunicatorTpOps::all_gather_columns(const Tensor& local, const std::vector<int64_t>& widths) {
  Timer timer{seconds_, count_};
  const int64_t M = local.size(0), ranks = int64_t(widths.size());
  const int64_t wmax = *std::max_element(widths.begin(), widths.end());
  if (local.size(1) != widths[size_t(comm_->rank())])
    fail("all_gather_columns: rank {} holds {} columns, expected {}", comm_->rank(), local.size(1),
         widths[size_t(comm_->rank())]);
  // Every rank contributes an equal [M, wmax] block (padded), so the gather itself is even.
  Tensor padded = Tensor::zeros({M, wmax}, DType::F32);
  padded.slice(1, 0, local.size(1)).copy_from(local);
  Tensor gathered = Tensor::empty({ranks, M, wmax}, DType::F32);
  comm_->all_gather(padded, gathered);
  const int64_t total = std::reduce(widths.begin(), widths.end(), int64_t(0));
  Tensor out = Tensor::empty({M, total}, DType::F32);
  for (int64_t m = 0; m < M; ++m) {
    float* dst = out.data<float>() + m * total;
    for (int64_t r = 0; r < ranks; ++r) {
      std::memcpy(dst, gathered.data<float>() + (r * M + m) * wmax, size_t(widths[size_t(r)]) * 4);
      dst += widths[size_t(r)];
    }
  }
  return out;
}

Tensor CommunicatorTpOps::all_gather_rows(const Tensor& local, const std::vector<int64_t>& rows) {
  Timer timer{seconds_, count_};
  const int64_t C = local.size(1), ranks = int64_t(rows.size());
  const int64_t nmax = *std::max_element(rows.begin(), rows.end());
  if (local.size(0) != rows[size_t(comm_->rank())])
    fail("all_gather_rows: rank {} holds {} rows, expected {}", comm_->rank(), local.size(0),
         rows[size_t(comm_->rank())]);
  // Padded to an even [nmax, C] block per rank, as in all_gather_columns.
  Tensor padded = Tensor::zeros({std::max<int64_t>(nmax, 1), C}, DType::F32);
  if (local.size(0)) padded.slice(0, 0, local.size(0)).copy_from(local);
  Tensor gathered = Tensor::empty({ranks, padded.size(0), C}, DType::F32);
  comm_->all_gather(padded, gathered);
  const int64_t total = std::reduce(rows.begin(), rows.end(), int64_t(0));
  Tensor out = Tensor::empty({total, C}, DType::F32);
  int64_t at = 0;
  for (int64_t r = 0; r < ranks; ++r) {
    std::memcpy(out.data<float>() + at * C, gathered.data<float>() + r * padded.size(0) * C,
                size_t(rows[size_t(r)] * C) * 4);
    at += rows[size_t(r)];
  }
  return out;
}

Tensor CommunicatorTpOps::all_to_all_rows(const Tensor& input, const std::vector<int64_t>& send_rows,
                                          const std::vector<int64_t>& recv_rows) {
  auto t0 = std::chrono::steady_clock::now();
  const int64_t received = std::reduce(recv_rows.begin(), recv_rows.end(), int64_t(0));
  Tensor in = input.contiguous();
  Tensor out = Tensor::empty({received, in.size(1)}, DType::F32);
  {
    Timer timer{seconds_, count_};
    comm_->all_to_all(in, send_rows, out, recv_rows);
  }
  ++a2a_.calls;
  a2a_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (size_t j = 0; j < send_rows.size(); ++j)
    if (int(j) != comm_->rank()) a2a_.bytes_sent += send_rows[j] * in.size(1) * int64_t(sizeof(float));
  return out;
}

}  // namespace troupe
