#pragma once
// Backend-independent checks: every collective x dtype x size on a communicator, each result
// compared with a serial computation of what all ranks contributed. Values are small integers so
// sums are exact in bf16/f16 whatever the reduction order, and a mismatch is a real bug.
// Runs inside one rank process; throws troupe::Error describing the first mismatch.
#include <algorithm>
#include <vector>

#include "comm/device_communicator.hpp"
#include "kernels/error.hpp"

namespace troupe::test {

// Rank r's value at index i: integers in [-30, 30], distinct across ranks and nearby indices.
inline float rank_value(int r, int64_t i) { return float((r * 17 + i * 13) % 61 - 30); }

inline Tensor rank_tensor(int r, int64_t n, DType dtype, int64_t base = 0) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = rank_value(r, base + i);
  return Tensor::from_floats(v, {n}).to(dtype);
}

inline void expect_equal(const Tensor& got, const std::vector<float>& want, const std::string& what) {
  std::vector<float> g = got.to_floats();
  if (g.size() != want.size()) fail("{}: {} elements, expected {}", what, g.size(), want.size());
  for (size_t i = 0; i < g.size(); ++i)
    if (g[i] != want[i]) fail("{}: element {} is {}, expected {}", what, i, g[i], want[i]);
}

// Elements a message of `bytes` bytes holds in dtype (at least 1).
inline int64_t elements_for(int64_t bytes, DType dtype) { return std::max<int64_t>(1, bytes / int64_t(dtype_size(dtype))); }

// Rows rank `src` sends to rank `dst` in the uneven all_to_all check (some pairs send nothing).
inline int64_t a2a_rows(int src, int dst) { return (src * 2 + dst * 3) % 4; }

inline void check_collectives(DeviceCommunicator& comm, const std::vector<int64_t>& byte_sizes) {
  const int n = comm.size(), me = comm.rank();
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (int64_t bytes : byte_sizes) {
      const int64_t len = elements_for(bytes, dtype);
      auto what = [&](const char* op) { return fmt::format("{} {} {} x{} ({} ranks)", comm.backend(), op, dtype_name(dtype), len, n); };

      for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max}) {
        Tensor t = rank_tensor(me, len, dtype);
        comm.all_reduce(t, op);
        std::vector<float> want(static_cast<size_t>(len));
        for (int64_t i = 0; i < len; ++i) {
          float acc = rank_value(0, i);
          for (int r = 1; r < n; ++r) acc = op == ReduceOp::Sum ? acc + rank_value(r, i) : std::max(acc, rank_value(r, i));
          want[size_t(i)] = acc;
        }
        expect_equal(t, want, what(op == ReduceOp::Sum ? "all_reduce sum" : "all_reduce max"));
      }

      {
        Tensor out = Tensor::zeros({n * len}, dtype);
        comm.all_gather(rank_tensor(me, len, dtype), out);
        std::vector<float> want;
        for (int r = 0; r < n; ++r)
          for (int64_t i = 0; i < len; ++i) want.push_back(rank_value(r, i));
        expect_equal(out, want, what("all_gather"));
      }

      {
        Tensor out = Tensor::zeros({len}, dtype);
        comm.reduce_scatter(rank_tensor(me, n * len, dtype), out);
        std::vector<float> want(static_cast<size_t>(len), 0.0f);
        for (int64_t i = 0; i < len; ++i)
          for (int r = 0; r < n; ++r) want[size_t(i)] += rank_value(r, me * len + i);
        expect_equal(out, want, what("reduce_scatter"));
      }

      for (int root : {0, n - 1}) {
        Tensor t = me == root ? rank_tensor(root, len, dtype) : Tensor::zeros({len}, dtype);
        comm.broadcast(t, root);
        std::vector<float> want(static_cast<size_t>(len));
        for (int64_t i = 0; i < len; ++i) want[size_t(i)] = rank_value(root, i);
        expect_equal(t, want, what("broadcast"));
      }

      {
        // Uneven: rank s sends a2a_rows(s, d) rows of `width` to rank d; row contents name (s, d).
        int64_t width = std::max<int64_t>(1, len / 4);
        std::vector<int64_t> send(static_cast<size_t>(n)), recv(static_cast<size_t>(n));
        std::vector<float> in, want;
        for (int j = 0; j < n; ++j) {
          send[size_t(j)] = a2a_rows(me, j);
          recv[size_t(j)] = a2a_rows(j, me);
          for (int64_t i = 0; i < send[size_t(j)] * width; ++i) in.push_back(rank_value(me * 5 + j, i));
          for (int64_t i = 0; i < recv[size_t(j)] * width; ++i) want.push_back(rank_value(j * 5 + me, i));
        }
        int64_t in_rows = int64_t(in.size()) / width, out_rows = int64_t(want.size()) / width;
        Tensor input = Tensor::from_floats(in, {in_rows, width}).to(dtype);
        Tensor output = Tensor::zeros({out_rows, width}, dtype);
        comm.all_to_all(input, send, output, recv);
        expect_equal(output, want, what("all_to_all"));
      }

      {
        // Ring send/recv: the async send lets every rank post its send before its receive.
        Tensor out = Tensor::zeros({len}, dtype);
        CommHandle sent = comm.send_async(rank_tensor(me, len, dtype), (me + 1) % n);
        comm.recv(out, (me + n - 1) % n);
        sent.wait();
        std::vector<float> want(static_cast<size_t>(len));
        for (int64_t i = 0; i < len; ++i) want[size_t(i)] = rank_value((me + n - 1) % n, i);
        expect_equal(out, want, what("send/recv"));
      }
      comm.barrier();
    }
  }
  // Async all_reduce overlapped with a sync one issued after it: the order is kept on every rank.
  Tensor a = rank_tensor(me, 1000, DType::F32), b = rank_tensor(me, 3, DType::F32, 7);
  CommHandle h = comm.all_reduce_async(a);
  comm.all_reduce(b, ReduceOp::Max);
  h.wait();
  std::vector<float> want_a(1000, 0.0f), want_b(3, -1e9f);
  for (int r = 0; r < n; ++r) {
    for (int64_t i = 0; i < 1000; ++i) want_a[size_t(i)] += rank_value(r, i);
    for (int64_t i = 0; i < 3; ++i) want_b[size_t(i)] = std::max(want_b[size_t(i)], rank_value(r, 7 + i));
  }
  expect_equal(a, want_a, "async all_reduce");
  expect_equal(b, want_b, "sync all_reduce after an async one");
}

// 1 element up to 16 MiB, with odd sizes that do not divide chunks evenly.
inline std::vector<int64_t> all_test_sizes() { return {1, 6, 4100, (1 << 20) + 12, 16 << 20}; }

}  // namespace troupe::test
