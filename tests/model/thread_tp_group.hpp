#pragma once
// ThreadTpGroup: a tensor-parallel group whose ranks are threads of one process, for tests of the
// parallel layers without a communicator. Every collective posts each rank's tensor, waits at a
// barrier, and combines the posts in rank order (so every rank computes the same sums).
#include <barrier>
#include <functional>
#include <thread>
#include <vector>

#include "kernels/error.hpp"
#include "kernels/tensor.hpp"
#include "model/tensor_parallel_ops.hpp"

namespace troupe::test {

class ThreadTpGroup {
 public:
  explicit ThreadTpGroup(int size) : size_(size), sync_(size), posts_(size_t(size)), counts_(size_t(size)) {}

  class Ops : public TensorParallelOps {
   public:
    Ops(ThreadTpGroup& group, int rank) : group_(group), rank_(rank) {}
    int rank() const override { return rank_; }
    int size() const override { return group_.size_; }
    void all_reduce_sum(Tensor& t) override {
      auto all = group_.exchange(rank_, t, {});
      Tensor sum = all[0].clone();
      for (size_t r = 1; r < all.size(); ++r)
        for (int64_t i = 0; i < sum.numel(); ++i) sum.data<float>()[i] += all[r].data<float>()[i];
      t.copy_from(sum.view(t.shape()));
    }
    Tensor all_gather_columns(const Tensor& local, const std::vector<int64_t>& widths) override {
      auto all = group_.exchange(rank_, local, {});
      int64_t total = 0;
      for (auto w : widths) total += w;
      Tensor out = Tensor::empty({local.size(0), total}, DType::F32);
      int64_t at = 0;
      for (size_t r = 0; r < all.size(); ++r) {
        CHECK_EQ(all[r].size(1), widths[r]);
        out.slice(1, at, at + widths[r]).copy_from(all[r]);
        at += widths[r];
      }
      return out;
    }
    Tensor all_gather_rows(const Tensor& local, const std::vector<int64_t>& rows) override {
      auto all = group_.exchange(rank_, local, {});
      int64_t total = 0;
      for (auto n : rows) total += n;
      Tensor out = Tensor::empty({total, local.size(1)}, DType::F32);
      int64_t at = 0;
      for (size_t r = 0; r < all.size(); ++r) {
        if (rows[r]) out.slice(0, at, at + rows[r]).copy_from(all[r]);
        at += rows[r];
      }
      return out;
    }
    Tensor all_to_all_rows(const Tensor& input, const std::vector<int64_t>& send_rows,
                           const std::vector<int64_t>& recv_rows) override {
      std::vector<std::vector<int64_t>> sends;
      auto all = group_.exchange(rank_, input, send_rows, &sends);
      int64_t total = 0;
      for (auto n : recv_rows) total += n;
      Tensor out = Tensor::empty({total, input.size(1)}, DType::F32);
      int64_t at = 0;
      for (size_t j = 0; j < all.size(); ++j) {
        int64_t from = 0;
        for (int r = 0; r < rank_; ++r) from += sends[j][size_t(r)];
        const int64_t n = sends[j][size_t(rank_)];
        CHECK_EQ(n, recv_rows[j]);
        if (n) out.slice(0, at, at + n).copy_from(all[j].slice(0, from, from + n));
        at += n;
      }
      return out;
    }

   private:
    ThreadTpGroup& group_;
    int rank_;
  };

  // Runs body(rank, ops) on one thread per rank and joins them.
  void run(const std::function<void(int, TensorParallelOps&)>& body) {
    std::vector<std::thread> threads;
    for (int r = 0; r < size_; ++r)
      threads.emplace_back([this, r, &body] {
        Ops ops(*this, r);
        body(r, ops);
      });
    for (auto& t : threads) t.join();
  }

 private:
  std::vector<Tensor> exchange(int rank, const Tensor& t, const std::vector<int64_t>& counts,
                               std::vector<std::vector<int64_t>>* all_counts = nullptr) {
    posts_[size_t(rank)] = t.contiguous().clone();
    counts_[size_t(rank)] = counts;
    sync_.arrive_and_wait();
    std::vector<Tensor> all = posts_;
    if (all_counts) *all_counts = counts_;
    sync_.arrive_and_wait();
    return all;
  }

  int size_;
  std::barrier<> sync_;
  std::vector<Tensor> posts_;
  std::vector<std::vector<int64_t>> counts_;
};

}  // namespace troupe::test
