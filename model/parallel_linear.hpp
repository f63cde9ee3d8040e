#pragma once
// Tensor-parallel linear layers y = x W^T (+ b), named as in vLLM's linear.py. Each loads its own
// shard of the checkpoint matrix "<name>.weight" [out, in] (QKV: also "<name>.bias") from a
// WeightStore, packs it for kernels/linear (bf16 stays bf16) and calls its group's collective itself:
//  - ColumnParallelLinear: output rows group.part(out); gather_output all-gathers the columns.
//  - MergedColumnParallelLinear: this rank's rows of several matrices of one input (gate, up), one GEMM.
//  - QKVParallelLinear: this rank's query heads, then its kv heads (kv_head_range: replicated when
//    kv_heads < tp), with the biases when the config has them.
//  - RowParallelLinear: input columns group.part(in); reduce_results all-reduces the partial sums
//    (off for a caller that adds several partials and reduces once, as MoeBlock does).
// With TpGroup{} (size 1) a layer is the plain linear of the whole matrix. The WeightStore is only
// read while constructing (a layer owns its packed copy); TpGroup::ops is borrowed and must
// outlive every forward().
#include <string>
#include <vector>

#include "kernels/linear.hpp"
#include "model/model_config.hpp"
#include "model/parallel_layout.hpp"
#include "model/tensor_parallel_ops.hpp"
#include "model/weight_store.hpp"

namespace troupe {

// A rank's place in the tensor-parallel group a layer is split over, and the group's collectives.
struct TpGroup {
  int rank = 0, size = 1;
  TensorParallelOps* ops = nullptr;  // borrowed; may be null when size == 1
  // Throws when layout.tp_size > 1 but ops is null.
  static TpGroup of(const ParallelLayout& layout, TensorParallelOps* ops);
  std::pair<int64_t, int64_t> part(int64_t total) const { return balanced_range(total, size, rank); }
  // In place over the group; a no-op at size 1.
  void all_reduce_sum(Tensor& t) const {
    if (size > 1) ops->all_reduce_sum(t);
  }
};

class ColumnParallelLinear {
 public:
  ColumnParallelLinear() = default;
  ColumnParallelLinear(const WeightStore& weights, const std::string& name, int64_t out, int64_t in, TpGroup group,
                       bool gather_output = false);
  Tensor forward(const Tensor& x) const;  // [T, in] -> [T, this rank's rows], or [T, out] gathered
  size_t weight_bytes() const { return weight_.nbytes() + (bias_.defined() ? bias_.nbytes() : 0); }

 protected:
  struct Part {  // rows [begin, end) of the [rows, in] matrix "<name>.weight"
    std::string name;
    int64_t rows, begin, end;
  };
  void load(const WeightStore& weights, const std::vector<Part>& parts, int64_t in, TpGroup group, bool bias);

 private:
  TpGroup group_;
  PackedWeight weight_;
  Tensor bias_;                           // f32, or undefined
  std::vector<int64_t> gathered_widths_;  // every rank's rows when gathering, else empty
};

class MergedColumnParallelLinear : public ColumnParallelLinear {
 public:
  MergedColumnParallelLinear() = default;
  MergedColumnParallelLinear(const WeightStore& weights, const std::vector<std::string>& names, int64_t out_each,
                             int64_t in, TpGroup group);
};

class QKVParallelLinear : public ColumnParallelLinear {
 public:
  QKVParallelLinear() = default;
  // `prefix` (e.g. "model.layers.0.self_attn") holds q_proj, k_proj and v_proj.
  QKVParallelLinear(const WeightStore& weights, const std::string& prefix, const ModelConfig& config, TpGroup group);
  int64_t local_q_heads() const { return q_heads_; }
  int64_t local_kv_heads() const { return kv_heads_; }

 private:
  int64_t q_heads_ = 0, kv_heads_ = 0;
};

class RowParallelLinear {
 public:
  RowParallelLinear() = default;
  RowParallelLinear(const WeightStore& weights, const std::string& name, int64_t out, int64_t in, TpGroup group,
                    bool reduce_results = true);
  Tensor forward(const Tensor& x) const;  // [T, this rank's columns of in] -> [T, out]
  bool defined() const { return weight_.defined(); }
  size_t weight_bytes() const { return weight_.nbytes(); }

 private:
  TpGroup group_;
  PackedWeight weight_;
  bool reduce_results_ = true;
};

}  // namespace troupe
