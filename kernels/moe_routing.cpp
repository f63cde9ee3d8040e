#include "kernels/moe_routing.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/error.hpp"

namespace troupe {

MoeRouting route_top_k(const Tensor& router_logits, int64_t top_k, bool renormalize) {
  if (router_logits.dim() != 2 || router_logits.dtype() != DType::F32)
    fail("route_top_k: router logits {} must be [tokens, experts] f32", router_logits.describe());
  const int64_t T = router_logits.size(0), E = router_logits.size(1);
  if (top_k < 1 || top_k > E) fail("route_top_k: top_k ({}) must be in [1, {}] (the number of experts)", top_k, E);
  Tensor logits = router_logits.contiguous();
  MoeRouting r{T, top_k, E, std::vector<int32_t>(size_t(T * top_k)), std::vector<float>(size_t(T * top_k))};
  std::vector<float> probs(static_cast<size_t>(E));
  std::vector<int32_t> idx(static_cast<size_t>(E));
  for (int64_t t = 0; t < T; ++t) {
    const float* x = logits.data<float>() + t * E;
    float max = *std::max_element(x, x + E), sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += probs[size_t(e)] = std::exp(x[e] - max);
    for (auto& p : probs) p /= sum;
    for (int64_t e = 0; e < E; ++e) idx[size_t(e)] = int32_t(e);
    std::partial_sort(idx.begin(), idx.begin() + top_k, idx.end(), [&](int32_t a, int32_t b) {
      return probs[size_t(a)] > probs[size_t(b)] || (probs[size_t(a)] == probs[size_t(b)] && a < b);
    });
    float kept = 0;
    for (int64_t s = 0; s < top_k; ++s) kept += probs[size_t(idx[size_t(s)])];
    for (int64_t s = 0; s < top_k; ++s) {
      float w = probs[size_t(idx[size_t(s)])];
      r.experts[size_t(t * top_k + s)] = idx[size_t(s)];
      r.weights[size_t(t * top_k + s)] = renormalize ? w / kept : w;
    }
  }
  return r;
}

ExpertGroups group_by_expert(const std::vector<int32_t>& experts, int64_t num_experts) {
  ExpertGroups g{std::vector<int64_t>(size_t(num_experts) + 1, 0), std::vector<int64_t>(experts.size())};
  for (int32_t e : experts) {
    if (e < 0 || e >= num_experts) fail("group_by_expert: expert {} outside [0, {})", e, num_experts);
    ++g.offsets[size_t(e) + 1];
  }
  for (size_t e = 0; e < size_t(num_experts); ++e) g.offsets[e + 1] += g.offsets[e];
  std::vector<int64_t> next(g.offsets.begin(), g.offsets.end() - 1);
  for (size_t a = 0; a < experts.size(); ++a) g.order[size_t(next[size_t(experts[a])]++)] = int64_t(a);
  return g;
}

Tensor gather_rows(const Tensor& src, const std::vector<int64_t>& rows) {
  const int64_t N = src.size(0), C = src.size(1);
  Tensor out = Tensor::empty({int64_t(rows.size()), C}, DType::F32);
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] >= N) fail("gather_rows: row {} outside [0, {})", rows[i], N);
    std::memcpy(out.data<float>() + int64_t(i) * C, src.data<float>() + rows[i] * src.strides()[0], size_t(C) * 4);
  }
  return out;
}

}  // namespace troupe
