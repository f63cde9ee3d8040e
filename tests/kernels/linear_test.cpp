#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "kernels/error.hpp"
#include "kernels/linear.hpp"
#include "kernels/thread_pool.hpp"

using namespace troupe;

namespace {

Tensor random_matrix(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng{seed};
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (auto& x : v) x = dist(rng);
  return Tensor::from_floats(v, {rows, cols});
}

// Double-precision reference of x @ w^T + b.
std::vector<double> reference(const Tensor& x, const Tensor& w, const Tensor& b) {
  auto xv = x.to_floats(), wv = w.to_floats();
  std::vector<float> bv = b.defined() ? b.to_floats() : std::vector<float>();
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  std::vector<double> out(static_cast<size_t>(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = bv.empty() ? 0.0 : bv[size_t(n)];
      for (int64_t k = 0; k < K; ++k) s += double(xv[size_t(m * K + k)]) * double(wv[size_t(n * K + k)]);
      out[size_t(m * N + n)] = s;
    }
  return out;
}

void check_close(const Tensor& got, const std::vector<double>& want, int64_t K) {
  auto g = got.to_floats();
  REQUIRE(g.size() == want.size());
  double tol = 1e-5 * std::sqrt(double(K)) * 4;
  for (size_t i = 0; i < g.size(); ++i) {
    CAPTURE(i);
    CHECK(std::abs(double(g[i]) - want[i]) <= tol * (1 + std::abs(want[i])));
  }
}

}  // namespace

TEST_CASE("linear matches a double-precision reference for odd shapes, f32 and bf16 weights") {
  for (auto [M, N, K] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 1, 1}, {1, 33, 17}, {3, 70, 64}, {9, 31, 100}, {17, 64, 5}}) {
    CAPTURE(M);
    CAPTURE(N);
    CAPTURE(K);
    Tensor x = random_matrix(M, K, 1), w = random_matrix(N, K, 2), b = random_matrix(1, N, 3).view({N});
    check_close(linear(x, PackedWeight(w), b), reference(x, w, b), K);
    Tensor w16 = w.to(DType::BF16);  // the reference uses the same rounded weights
    check_close(linear(x, PackedWeight(w16)), reference(x, w16, Tensor()), K);
  }
}

TEST_CASE("linear over a column slice of a weight (row-parallel shard) uses only that slice") {
  Tensor x = random_matrix(4, 24, 5), w = random_matrix(40, 48, 6);
  Tensor shard = w.slice(1, 24, 48);
  check_close(linear(x, PackedWeight(shard)), reference(x, shard.clone(), Tensor()), 24);
}

TEST_CASE("each row's output is bit-identical alone, in a batch, and with any thread count") {
  const int64_t M = 13, N = 100, K = 77;
  Tensor x = random_matrix(M, K, 7);
  PackedWeight w(random_matrix(N, K, 8).to(DType::BF16));
  Tensor batched = linear(x, w);
  ThreadPool one(1);
  ScopedThreadPool scope(one);
  for (int64_t m = 0; m < M; ++m) {
    Tensor alone = linear(x.slice(0, m, m + 1), w);
    CAPTURE(m);
    CHECK(alone.to_floats() == batched.slice(0, m, m + 1).to_floats());
  }
}

TEST_CASE("linear rejects mismatched shapes with the sizes named") {
  Tensor x = random_matrix(2, 8, 1);
  PackedWeight w(random_matrix(4, 9, 2));
  CHECK_THROWS_WITH_AS(linear(x, w), doctest::Contains("has 8 features but the weight takes 9"), Error);
  Tensor bad_bias = Tensor::zeros({3}, DType::F32);
  CHECK_THROWS_AS(linear(random_matrix(2, 9, 1), w, bad_bias), Error);
}
