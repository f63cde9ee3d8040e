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

// A tensor of n elements whose element i is value(i); written straight in dtype (the 16 MiB cases
// make a float round trip through Tensor::to noticeably slow on 2 cores).
template <typename F>
Tensor make_tensor(const Shape& shape, DType dtype, F&& value) {
  Tensor t = Tensor::empty(shape, dtype);
  int64_t n = t.numel();
  if (dtype == DType::F32) {
    for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = value(i);
  } else {
    auto* p = t.data<uint16_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = dtype == DType::BF16 ? f32_to_bf16(value(i)) : f32_to_f16(value(i));
  }
  return t;
}

inline Tensor rank_tensor(int r, int64_t n, DType dtype, int64_t base = 0) {
  return make_tensor({n}, dtype, [&](int64_t i) { return rank_value(r, base + i); });
}

inline float element(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::F32:
      return t.data<float>()[i];
    case DType::BF16:
      return bf16_to_f32(t.data<uint16_t>()[i]);
    default:
      return f16_to_f32(t.data<uint16_t>()[i]);
  }
}

// Checks element i of `got` against want(i) for every i.
template <typename F>
void expect_values(const Tensor& got, int64_t n, F&& want, const std::string& what) {
  if (got.numel() != n) fail("{}: {} elements, expected {}", what, got.numel(), n);
  for (int64_t i = 0; i < n; ++i) {
    float g = element(got, i), w = want(i);
    if (g != w) fail("{}: element {} is {}, expected {}", what, i, g, w);
  }
}

inline void expect_equal(const Tensor& got, const std::vector<float>& want, const std::string& what) {
  expect_values(
      got, int64_t(want.size()), [&](int64_t i) { return want[size_t(i)]; }, what);
}

// Elements a message of `bytes` bytes holds in dtype (at least 1).
inline int64_t elements_for(int64_t bytes, DType dtype) {
  return std::max<int64_t>(1, bytes / int64_t(dtype_size(dtype)));
}

// Rows rank `src` sends to rank `dst` in the uneven all_to_all check (some pairs send nothing).
inline int64_t a2a_rows(int src, int dst) { return (src * 2 + dst * 3) % 4; }

inline void check_collectives(DeviceCommunicator& comm, const std::vector<int64_t>& byte_sizes) {
  const int n = comm.size(), me = comm.rank();
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    for (int64_t bytes : byte_sizes) {
      const int64_t len = elements_for(bytes, dtype);
      auto what = [&](const char* op) {
        return fmt::format("{} {} {} x{} ({} ranks)", comm.backend(), op, dtype_name(dtype), len, n);
      };

      for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max}) {
        Tensor t = rank_tensor(me, len, dtype);
        comm.all_reduce(t, op);
        expect_values(
            t, len,
            [&](int64_t i) {
              float acc = rank_value(0, i);
              for (int r = 1; r < n; ++r)
                acc = op == ReduceOp::Sum ? acc + rank_value(r, i) : std::max(acc, rank_value(r, i));
              return acc;
            },
            what(op == ReduceOp::Sum ? "all_reduce sum" : "all_reduce max"));
      }

      {
        Tensor out = Tensor::zeros({n * len}, dtype);
        comm.all_gather(rank_tensor(me, len, dtype), out);
        expect_values(
            out, n * len, [&](int64_t i) { return rank_value(int(i / len), i % len); }, what("all_gather"));
      }

      {
        Tensor out = Tensor::zeros({len}, dtype);
        comm.reduce_scatter(rank_tensor(me, n * len, dtype), out);
        expect_values(
            out, len,
            [&](int64_t i) {
              float acc = 0;
              for (int r = 0; r < n; ++r) acc += rank_value(r, me * len + i);
              return acc;
            },
            what("reduce_scatter"));
      }

      for (int root : {0, n - 1}) {
        Tensor t = me == root ? rank_tensor(root, len, dtype) : Tensor::zeros({len}, dtype);
        comm.broadcast(t, root);
        expect_values(
            t, len, [&](int64_t i) { return rank_value(root, i); }, what("broadcast"));
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
        Tensor input = make_tensor({in_rows, width}, dtype, [&](int64_t i) { return in[size_t(i)]; });
        Tensor output = Tensor::zeros({out_rows, width}, dtype);
        comm.all_to_all(input, send, output, recv);
        expect_equal(output, want, what("all_to_all"));
      }

      if (n > 1) {
        // Ring send/recv: the async send lets every rank post its send before its receive.
        Tensor out = Tensor::zeros({len}, dtype);
        CommHandle sent = comm.send_async(rank_tensor(me, len, dtype), (me + 1) % n);
        comm.recv(out, (me + n - 1) % n);
        sent.wait();
        expect_values(
            out, len, [&](int64_t i) { return rank_value((me + n - 1) % n, i); }, what("send/recv"));
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

  // The other async variants, queued back to back and waited on together.
  const int64_t len = 37;
  Tensor gathered = Tensor::zeros({n * len}, DType::F32), scattered = Tensor::zeros({len}, DType::F32);
  Tensor cast = me == 0 ? rank_tensor(0, len, DType::F32) : Tensor::zeros({len}, DType::F32);
  std::vector<int64_t> one_row(static_cast<size_t>(n), 1);
  Tensor exchanged = Tensor::zeros({n, len}, DType::F32);
  Tensor to_send =
      make_tensor({n, len}, DType::F32, [&](int64_t i) { return rank_value(me * 5 + int(i / len), i % len); });
  std::vector<CommHandle> handles;
  handles.push_back(comm.all_gather_async(rank_tensor(me, len, DType::F32), gathered));
  handles.push_back(comm.reduce_scatter_async(rank_tensor(me, n * len, DType::F32), scattered));
  handles.push_back(comm.broadcast_async(cast, 0));
  handles.push_back(comm.all_to_all_async(to_send, one_row, exchanged, one_row));
  for (auto& h : handles) h.wait();
  expect_values(
      gathered, n * len, [&](int64_t i) { return rank_value(int(i / len), i % len); }, "all_gather_async");
  expect_values(
      scattered, len,
      [&](int64_t i) {
        float acc = 0;
        for (int r = 0; r < n; ++r) acc += rank_value(r, me * len + i);
        return acc;
      },
      "reduce_scatter_async");
  expect_values(
      cast, len, [&](int64_t i) { return rank_value(0, i); }, "broadcast_async");
  expect_values(
      exchanged, n * len, [&](int64_t i) { return rank_value(int(i / len) * 5 + me, i % len); }, "all_to_all_async");
}

// 1 element up to 16 MiB, with odd sizes that do not divide chunks evenly.
// Under the sanitizers (Debug, 5-20x slower) the largest size is 4M + 3 elements: still several
// chunks of every backend's pipelined path, inside the per-run limit on 2 cores.
inline std::vector<int64_t> all_test_sizes() {
#if TROUPE_SANITIZED
  return {1, 6, 4100, (1 << 20) + 12, (4 << 20) + 3};
#else
  return {1, 6, 4100, (1 << 20) + 12, 16 << 20};
#endif
}
// For the 3-rank runs (uneven segment and split arithmetic): up to a few chunks, to keep the suite
// inside the CI budget on 2 cores.
inline std::vector<int64_t> uneven_test_sizes() { return {1, 6, 4100, (1 << 20) + 12}; }

}  // namespace troupe::test
