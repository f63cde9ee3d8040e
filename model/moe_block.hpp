#pragma once
// MoeBlock: the sparse mixture-of-experts MLP of Mixtral (`block_sparse_moe`, top-k renormalised)
// and Qwen2-MoE (`mlp.experts`, optional renormalisation, a shared expert behind a sigmoid gate).
//
// forward(): route every token (softmax over the router logits, top-k), group the (token, expert)
// assignments by expert, run one gated-MLP GEMM per expert over its gathered tokens, and add the
// weighted outputs back in expert order (Hugging Face's order). The result is complete on every
// rank of the tp group; the block does its own collectives:
//  - tp > 1, ep 1: every expert is tensor-parallel like a dense MLP (its intermediate split over
//    the group), then one all-reduce.
//  - ep == tp x dp (wide, DP attention): as ep == tp, but the experts are partitioned over every
//    replica's tp group together and the dispatch spans them; each replica routes its own batch
//    (possibly empty: an idle replica still enters every all_to_all).
//  - ep == tp > 1: experts are partitioned over the group in contiguous ranges. Each rank is home
//    to a contiguous range of the tokens; it dispatches its tokens' assignments to the ranks owning
//    the experts (uneven all_to_all), the owners run them, a reverse all_to_all brings the outputs
//    home, the home rank combines them weighted, and an all-gather of rows gives every rank the
//    whole batch. The shared expert and any replicated (hot) routed experts run on every rank,
//    for the rank's home tokens, without a dispatch.
#include <set>
#include <string>
#include <vector>

#include "kernels/linear.hpp"
#include "kernels/moe_routing.hpp"
#include "kernels/tensor.hpp"
#include "model/dense_mlp.hpp"
#include "model/model_config.hpp"
#include "model/parallel_layout.hpp"
#include "model/parallel_linear.hpp"
#include "model/weight_store.hpp"

namespace troupe {

class MoeBlock {
 public:
  // `layer_prefix` is e.g. "model.layers.3"; `layout` passed validate_layout; tp_ops may be null at tp 1;
  // ep_ops: the expert group's collectives when it spans replicas (layout.wide_expert_parallel()).
  // layout.replicated_experts are held whole by every expert-parallel rank and computed locally.
  MoeBlock(const WeightStore& weights, const std::string& layer_prefix, const ModelConfig& config,
           const ParallelLayout& layout, TensorParallelOps* tp_ops, TensorParallelOps* ep_ops = nullptr);
  // x: [T, hidden] (the same on every tp rank) -> [T, hidden], complete on every rank.
  Tensor forward(const Tensor& x);
  size_t weight_bytes() const;

  // Tokens routed to each expert (top-k assignments of every token of every forward), summed
  // since construction or reset; the same on every rank of a tp group (a replica's tokens).
  const std::vector<int64_t>& expert_load() const { return load_; }
  void reset_expert_load() { std::fill(load_.begin(), load_.end(), 0); }
  // Experts this rank holds: [begin, end) of the partition plus the replicated ones (all under ep 1).
  bool holds_expert(int64_t e) const { return experts_[size_t(e)].defined(); }

  static std::set<std::string> expected_tensor_names(const ModelConfig& config, const std::string& layer_prefix);

 private:
  // Expert outputs for items: item i is row src_rows[i] of src through expert experts[i].
  Tensor run_experts(const Tensor& src, const std::vector<int64_t>& src_rows,
                     const std::vector<int32_t>& experts) const;
  // Adds weights[i] * y[i] to out[out_rows[i]], items in expert order.
  void combine(Tensor& out, const Tensor& y, const std::vector<int64_t>& out_rows, const std::vector<int32_t>& experts,
               const std::vector<float>& weights) const;
  Tensor routed_expert_parallel(const Tensor& x, const MoeRouting& routing, int64_t home_begin, int64_t home_end);
  void add_shared_expert(const Tensor& x, Tensor& out) const;
  int owner_of(int64_t expert) const { return int(expert / experts_per_rank_); }

  ModelConfig config_;
  ParallelLayout layout_;
  TpGroup tp_;
  TensorParallelOps* ep_ops_ = nullptr;  // the dispatch's group: tp's, or the wide expert group's
  bool expert_parallel_ = false;
  int64_t experts_per_rank_ = 0;
  std::vector<bool> replicated_;
  PackedWeight router_;              // [E, hidden], replicated
  std::vector<DenseMlp> experts_;    // by expert id; undefined where this rank holds none; not reduced
  DenseMlp shared_expert_;           // tp slice without ep, whole under ep; never reduced itself
  PackedWeight shared_expert_gate_;  // [1, hidden]
  std::vector<int64_t> load_;
};

}  // namespace troupe
