#pragma once
// Mixture-of-experts routing on CPU, matching Hugging Face in f32: a softmax over each token's
// router logits, the top-k experts (ties to the lower index, as torch.topk on CPU), optionally
// renormalised so the k weights sum to 1 (Mixtral always, Qwen2-MoE when norm_topk_prob). Then the
// (token, slot) assignments grouped by expert, so each expert runs one GEMM over its tokens.
#include <cstdint>
#include <vector>

#include "kernels/tensor.hpp"

namespace troupe {

struct MoeRouting {
  int64_t num_tokens = 0, top_k = 0, num_experts = 0;
  std::vector<int32_t> experts;  // [T * k]: expert of (token t, slot s) at t * k + s, best first
  std::vector<float> weights;    // [T * k]: its routing weight
};

// router_logits: [T, E] f32 with contiguous rows.
MoeRouting route_top_k(const Tensor& router_logits, int64_t top_k, bool renormalize);

// Assignments (indices t * k + s into a MoeRouting) ordered by expert, stable within an expert
// (token order): expert e's assignments are order[offsets[e], offsets[e + 1]).
struct ExpertGroups {
  std::vector<int64_t> offsets;  // [E + 1]
  std::vector<int64_t> order;    // [T * k]
  int64_t count(int64_t expert) const { return offsets[size_t(expert) + 1] - offsets[size_t(expert)]; }
};
ExpertGroups group_by_expert(const std::vector<int32_t>& experts, int64_t num_experts);

// Copies rows[i] of src ([N, C] f32) into row i of a new [rows.size(), C] tensor.
Tensor gather_rows(const Tensor& src, const std::vector<int64_t>& rows);

}  // namespace troupe
