#include "model/moe_block.hpp"

#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "kernels/error.hpp"

namespace troupe {

namespace {

// Checkpoint names of the two families: the block's folder and the expert projections.
struct Family {
  const char* block;
  MlpNames expert;
};

Family family_of(const ModelConfig& c) {
  if (c.model_type == "mixtral") return {"block_sparse_moe", {"w1", "w3", "w2"}};
  if (c.model_type == "qwen2_moe") return {"mlp", {}};
  fail("model_type '{}' has no mixture-of-experts block (expected mixtral or qwen2_moe)", c.model_type);
}

std::string with_dot(const std::string& prefix) { return prefix.ends_with('.') ? prefix : prefix + "."; }

std::string expert_prefix(const std::string& p, const Family& f, int64_t e) {
  return fmt::format("{}{}.experts.{}", p, f.block, e);
}

float* row_of(const Tensor& t, int64_t r) { return t.data<float>() + r * t.strides()[0]; }

}  // namespace

std::set<std::string> MoeBlock::expected_tensor_names(const ModelConfig& c, const std::string& layer_prefix) {
  const std::string p = with_dot(layer_prefix);
  const Family f = family_of(c);
  std::set<std::string> names = {p + f.block + ".gate.weight"};
  for (int64_t e = 0; e < c.num_experts; ++e)
    for (const char* proj : {f.expert.gate, f.expert.up, f.expert.down})
      names.insert(expert_prefix(p, f, e) + "." + proj + ".weight");
  if (c.shared_expert_intermediate_size > 0)
    for (const char* n : {"mlp.shared_expert.gate_proj.weight", "mlp.shared_expert.up_proj.weight",
                          "mlp.shared_expert.down_proj.weight", "mlp.shared_expert_gate.weight"})
      names.insert(p + n);
  return names;
}

MoeBlock::MoeBlock(const WeightStore& weights, const std::string& layer_prefix, const ModelConfig& config,
                   const ParallelLayout& layout, TensorParallelOps* tp_ops, TensorParallelOps* ep_ops)
    : config_(config), layout_(layout), tp_(TpGroup::of(layout, tp_ops)) {
  ep_ops_ = layout.wide_expert_parallel() ? ep_ops : tp_ops;
  if (layout.ep_size > 1 && (!ep_ops_ || ep_ops_->size() != layout.ep_size))
    fail("{}: the expert group's collectives span {} ranks, not {}", layout.describe(), ep_ops_ ? ep_ops_->size() : 0,
         layout.ep_size);
  const std::string p = with_dot(layer_prefix);
  const Family f = family_of(config);
  const int64_t H = config.hidden_size, E = config.num_experts, I = config.moe_intermediate_size;
  expert_parallel_ = layout.ep_size > 1;
  experts_per_rank_ = E / layout.ep_size;
  replicated_.assign(size_t(E), false);
  for (int64_t e : layout.replicated_experts) {
    if (e < 0 || e >= E) fail("replicated expert {} is outside the model's {} experts", e, E);
    replicated_[size_t(e)] = true;
  }
  router_ = PackedWeight(weights.get(p + f.block + ".gate.weight", {E, H}));
  experts_.resize(size_t(E));
  // Under ep a rank holds its experts whole; without it every expert is split over tp. The block
  // sums the experts' partial outputs and reduces once.
  const TpGroup split = expert_parallel_ ? TpGroup{} : tp_;
  for (int64_t e = 0; e < E; ++e)
    if (!expert_parallel_ || owner_of(e) == ep_ops_->rank() || replicated_[size_t(e)])
      experts_[size_t(e)] = DenseMlp(weights, expert_prefix(p, f, e), H, I, split, false, f.expert);
  if (config.shared_expert_intermediate_size > 0) {
    shared_expert_ =
        DenseMlp(weights, p + "mlp.shared_expert", H, config.shared_expert_intermediate_size, split, false);
    shared_expert_gate_ = PackedWeight(weights.get(p + "mlp.shared_expert_gate.weight", {1, H}));
  }
  load_.assign(size_t(E), 0);
}

size_t MoeBlock::weight_bytes() const {
  size_t b =
      router_.nbytes() + shared_expert_gate_.nbytes() + (shared_expert_.defined() ? shared_expert_.weight_bytes() : 0);
  for (const auto& e : experts_)
    if (e.defined()) b += e.weight_bytes();
  return b;
}

Tensor MoeBlock::forward(const Tensor& input) {
  Tensor x = input.contiguous();
  const int64_t T = x.size(0), H = config_.hidden_size, k = config_.num_experts_per_tok;
  // Every rank routes every token (the router is replicated and cheap), so the load counters are
  // whole everywhere; under ep a rank then dispatches only its home tokens.
  MoeRouting routing = route_top_k(linear(x, router_), k, config_.norm_topk_prob);
  for (int32_t e : routing.experts) ++load_[size_t(e)];
  if (expert_parallel_) {
    const std::vector<int64_t> home_rows = balanced_sizes(T, layout_.tp_size);
    auto [hb, he] = balanced_range(T, layout_.tp_size, layout_.tp_rank);
    Tensor home = routed_expert_parallel(x, routing, hb, he);
    add_shared_expert(x.slice(0, hb, he), home);
    return layout_.tp_size > 1 ? tp_.ops->all_gather_rows(home, home_rows) : home;
  }
  std::vector<int64_t> tokens(routing.experts.size());
  for (size_t a = 0; a < tokens.size(); ++a) tokens[a] = int64_t(a) / k;
  Tensor y = run_experts(x, tokens, routing.experts);
  Tensor out = Tensor::zeros({T, H}, DType::F32);
  combine(out, y, tokens, routing.experts, routing.weights);
  add_shared_expert(x, out);
  tp_.all_reduce_sum(out);  // experts (and shared) are split over tp
  return out;
}

Tensor MoeBlock::run_experts(const Tensor& src, const std::vector<int64_t>& src_rows,
                             const std::vector<int32_t>& experts) const {
  const int64_t H = config_.hidden_size;
  Tensor y = Tensor::empty({int64_t(src_rows.size()), H}, DType::F32);
  ExpertGroups groups = group_by_expert(experts, config_.num_experts);
  std::vector<int64_t> rows;
  for (int64_t e = 0; e < config_.num_experts; ++e) {
    const int64_t n = groups.count(e), first = groups.offsets[size_t(e)];
    if (n == 0) continue;
    if (!holds_expert(e))
      fail("rank {} was given {} tokens for expert {}, which it does not hold", layout_.tp_rank, n, e);
    rows.assign(size_t(n), 0);
    for (int64_t j = 0; j < n; ++j) rows[size_t(j)] = src_rows[size_t(groups.order[size_t(first + j)])];
    Tensor out = experts_[size_t(e)].forward(gather_rows(src, rows));  // one GEMM batch per expert
    for (int64_t j = 0; j < n; ++j)
      std::memcpy(row_of(y, groups.order[size_t(first + j)]), row_of(out, j), size_t(H) * 4);
  }
  return y;
}

void MoeBlock::combine(Tensor& out, const Tensor& y, const std::vector<int64_t>& out_rows,
                       const std::vector<int32_t>& experts, const std::vector<float>& weights) const {
  const int64_t H = config_.hidden_size;
  // Expert order, as Hugging Face's index_add_ loop sums them.
  for (int64_t i : group_by_expert(experts, config_.num_experts).order) {
    float* o = row_of(out, out_rows[size_t(i)]);
    const float* yi = row_of(y, i);
    const float w = weights[size_t(i)];
    for (int64_t h = 0; h < H; ++h) o[h] += yi[h] * w;
  }
}

void MoeBlock::add_shared_expert(const Tensor& x, Tensor& out) const {
  if (!shared_expert_.defined() || x.size(0) == 0) return;
  Tensor y = shared_expert_.forward(x);
  Tensor gate = linear(x, shared_expert_gate_);  // [T, 1]
  for (int64_t t = 0; t < x.size(0); ++t) {
    const float s = 1.0f / (1.0f + std::exp(-gate.data<float>()[t]));
    float* o = row_of(out, t);
    const float* yt = row_of(y, t);
    for (int64_t h = 0; h < config_.hidden_size; ++h) o[h] += s * yt[h];
  }
}

Tensor MoeBlock::routed_expert_parallel(const Tensor& x, const MoeRouting& routing, int64_t home_begin,
                                        int64_t home_end) {
  const int P = layout_.ep_size;
  const int64_t H = config_.hidden_size, k = routing.top_k;
  // The home tokens' assignments: replicated experts stay here, the rest go to their owners.
  std::vector<std::vector<int64_t>> to_rank(static_cast<size_t>(P));
  std::vector<int64_t> local;
  for (int64_t a = home_begin * k; a < home_end * k; ++a) {
    const int32_t e = routing.experts[size_t(a)];
    if (replicated_[size_t(e)])
      local.push_back(a);
    else
      to_rank[size_t(owner_of(e))].push_back(a);
  }
  std::vector<int64_t> send_rows, sent;  // sent: the dispatched assignments in send order
  for (const auto& v : to_rank) {
    send_rows.push_back(int64_t(v.size()));
    sent.insert(sent.end(), v.begin(), v.end());
  }
  // A dispatch row is the token's hidden state with its expert id in one extra column (exact in f32).
  Tensor send = Tensor::empty({int64_t(sent.size()), H + 1}, DType::F32);
  for (size_t i = 0; i < sent.size(); ++i) {
    float* r = row_of(send, int64_t(i));
    std::memcpy(r, row_of(x, sent[i] / k), size_t(H) * 4);
    r[H] = float(routing.experts[size_t(sent[i])]);
  }
  // Row counts travel first so each rank can size what it receives.
  Tensor counts = Tensor::empty({P, 1}, DType::F32);
  for (int r = 0; r < P; ++r) counts.data<float>()[r] = float(send_rows[size_t(r)]);
  const std::vector<int64_t> ones(size_t(P), 1);
  Tensor peer_counts = ep_ops_->all_to_all_rows(counts, ones, ones);
  std::vector<int64_t> recv_rows;
  for (int r = 0; r < P; ++r) recv_rows.push_back(int64_t(peer_counts.data<float>()[r]));
  Tensor recv = ep_ops_->all_to_all_rows(send, send_rows, recv_rows);

  std::vector<int64_t> recv_index(size_t(recv.size(0)));
  std::vector<int32_t> recv_expert(recv_index.size());
  for (size_t i = 0; i < recv_index.size(); ++i) {
    recv_index[i] = int64_t(i);
    recv_expert[i] = int32_t(row_of(recv, int64_t(i))[H]);
  }
  Tensor y_recv = run_experts(recv.slice(1, 0, H), recv_index, recv_expert);
  Tensor y_sent = ep_ops_->all_to_all_rows(y_recv, recv_rows, send_rows);  // back home, in send order

  std::vector<int64_t> local_tokens;
  std::vector<int32_t> local_experts;
  for (int64_t a : local) {
    local_tokens.push_back(a / k);
    local_experts.push_back(routing.experts[size_t(a)]);
  }
  Tensor y_local = run_experts(x, local_tokens, local_experts);

  // Combine every home assignment: the dispatched ones, then the local ones.
  const size_t n = sent.size() + local.size();
  Tensor y = Tensor::empty({int64_t(n), H}, DType::F32);
  std::vector<int64_t> out_rows;
  std::vector<int32_t> experts;
  std::vector<float> weights;
  size_t i = 0;
  for (const auto* part : {&sent, &local})
    for (int64_t a : *part) {
      const Tensor& src = part == &sent ? y_sent : y_local;
      const int64_t src_row = part == &sent ? int64_t(i) : int64_t(i - sent.size());
      std::memcpy(row_of(y, int64_t(i)), row_of(src, src_row), size_t(H) * 4);
      out_rows.push_back(a / k - home_begin);
      experts.push_back(routing.experts[size_t(a)]);
      weights.push_back(routing.weights[size_t(a)]);
      ++i;
    }
  Tensor home = Tensor::zeros({home_end - home_begin, H}, DType::F32);
  combine(home, y, out_rows, experts, weights);
  return home;
}

}  // namespace troupe
