// MoE routing: softmax + top-k (+ renormalisation) in f32 as Hugging Face computes it, and the
// grouping of assignments by expert that lets each expert run one GEMM.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "kernels/error.hpp"
#include "kernels/moe_routing.hpp"

using namespace troupe;

TEST_CASE("route_top_k: softmax, top-k best first, renormalised or not") {
  // Two tokens, four experts.
  Tensor logits = Tensor::from_floats({1.0f, 3.0f, 2.0f, 0.0f, 0.5f, 0.5f, -1.0f, 4.0f}, {2, 4});
  auto softmax = [](std::vector<float> x) {
    float m = *std::max_element(x.begin(), x.end()), s = 0;
    for (auto& v : x) s += v = std::exp(v - m);
    for (auto& v : x) v /= s;
    return x;
  };
  auto p0 = softmax({1, 3, 2, 0}), p1 = softmax({0.5f, 0.5f, -1, 4});
  MoeRouting raw = route_top_k(logits, 2, false);
  CHECK(raw.experts == std::vector<int32_t>{1, 2, 3, 0});  // ties go to the lower index (0 before 1)
  CHECK(raw.weights[0] == doctest::Approx(p0[1]).epsilon(1e-6));
  CHECK(raw.weights[1] == doctest::Approx(p0[2]).epsilon(1e-6));
  CHECK(raw.weights[2] == doctest::Approx(p1[3]).epsilon(1e-6));
  CHECK(raw.weights[3] == doctest::Approx(p1[0]).epsilon(1e-6));
  MoeRouting norm = route_top_k(logits, 2, true);
  CHECK(norm.experts == raw.experts);
  CHECK(norm.weights[0] + norm.weights[1] == doctest::Approx(1.0f));
  CHECK(norm.weights[0] == doctest::Approx(p0[1] / (p0[1] + p0[2])).epsilon(1e-6));
  CHECK_THROWS_WITH_AS(route_top_k(logits, 5, true), "route_top_k: top_k (5) must be in [1, 4] (the number of experts)",
                       Error);
}

TEST_CASE("group_by_expert: assignments ordered by expert, token order within each") {
  std::vector<int32_t> experts = {2, 0, 1, 2, 2, 1};  // (token, slot) t * 2 + s
  ExpertGroups g = group_by_expert(experts, 4);
  CHECK(g.offsets == std::vector<int64_t>{0, 1, 3, 6, 6});
  CHECK(g.order == std::vector<int64_t>{1, 2, 5, 0, 3, 4});
  CHECK(g.count(3) == 0);
  CHECK_THROWS_WITH_AS(group_by_expert({4}, 4), "group_by_expert: expert 4 outside [0, 4)", Error);
}

TEST_CASE("gather_rows copies the named rows, also from a column slice") {
  Tensor src = Tensor::from_floats({0, 1, 2, 10, 11, 12, 20, 21, 22}, {3, 3});
  CHECK(gather_rows(src, {2, 0, 2}).to_floats() == std::vector<float>{20, 21, 22, 0, 1, 2, 20, 21, 22});
  CHECK(gather_rows(src.slice(1, 0, 2), {1}).to_floats() == std::vector<float>{10, 11});
}
