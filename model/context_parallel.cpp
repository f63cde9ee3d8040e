#include "model/context_parallel.hpp"

#include <algorithm>
#include <cstring>
#include <future>
#include <numeric>

#include "kernels/error.hpp"
#include "kernels/paged_attention.hpp"
#include "kernels/partial_attention.hpp"
#include "model/parallel_layout.hpp"

namespace troupe {

namespace {

// Ring chunks of at least this many rows are exchanged beside the attention (see context_parallel_attention).
constexpr int64_t kOverlapRows = 64;

// dst[:, dst_col : dst_col + width] = src[:, src_col : src_col + width], row by row.
void copy_columns(Tensor& dst, int64_t dst_col, const Tensor& src, int64_t src_col, int64_t width,
                  int64_t dst_row = 0) {
  for (int64_t t = 0; t < src.size(0); ++t)
    std::memcpy(dst.data<float>() + (dst_row + t) * dst.strides()[0] + dst_col,
                src.data<float>() + t * src.strides()[0] + src_col, size_t(width) * 4);
}

}  // namespace

UlyssesHeads ulysses_heads(int64_t q_heads, int64_t kv_heads, int ulysses_degree, int member) {
  if (ulysses_degree < 1 || member < 0 || member >= ulysses_degree)
    fail("ulysses member {} of degree {}", member, ulysses_degree);
  if (kv_heads < 1 || q_heads % kv_heads)
    fail("ulysses: {} query heads do not group over {} kv heads", q_heads, kv_heads);
  if (q_heads % ulysses_degree)
    fail("ulysses_degree {} does not divide the {} query heads a tensor-parallel rank holds", ulysses_degree, q_heads);
  const int64_t per = q_heads / ulysses_degree, group = q_heads / kv_heads;
  if (per % group && group % per)
    fail(
        "ulysses_degree {}: {} query heads per rank neither cover whole groups nor fit inside one group of {} "
        "(query heads {} over kv heads {})",
        ulysses_degree, per, group, q_heads, kv_heads);
  UlyssesHeads h;
  h.q_begin = member * per;
  h.q_end = h.q_begin + per;
  h.kv_begin = h.q_begin / group;
  h.kv_end = (h.q_end + group - 1) / group;
  return h;
}

ContextParallelPlan::ContextParallelPlan(const ForwardBatch& batch, const ContextParallelGroups& groups)
    : batch_(&batch), groups_(groups) {
  const int r = groups.ring_degree(), u = groups.ulysses_degree();
  const auto& meta = batch.attention;
  const size_t sequences = meta.block_tables.size();
  std::vector<std::vector<int64_t>> of_sequence(sequences);
  for (int64_t t = 0; t < batch.num_tokens(); ++t)
    of_sequence.at(size_t(meta.sequence_of_token[size_t(t)])).push_back(t);
  chunks_.assign(size_t(r), {});
  first_step_keys_.assign(sequences, {});  // the cached context first
  for (size_t s = 0; s < sequences; ++s) {
    auto& toks = of_sequence[s];
    std::sort(toks.begin(), toks.end(),
              [&](int64_t a, int64_t b) { return meta.positions[size_t(a)] < meta.positions[size_t(b)]; });
    // Zig-zag: piece k of 2r goes to ring chunk k (first half) or 2r-1-k (second half), rotated by the
    // sequence so that short sequences (decode tokens) spread over the ring.
    for (int k = 0; k < 2 * r; ++k) {
      const auto [begin, end] = balanced_range(int64_t(toks.size()), 2 * r, k);
      const int chunk = ((k < r ? k : 2 * r - 1 - k) + int(s)) % r;
      for (int64_t i = begin; i < end; ++i) chunks_[size_t(chunk)].push_back(toks[size_t(i)]);
    }
    if (!toks.empty()) {
      std::vector<int32_t> in_batch;
      for (int64_t t : toks) in_batch.push_back(meta.positions[size_t(t)]);
      for (int32_t p = 0, i = 0; p <= in_batch.back(); ++p)
        if (size_t(i) < in_batch.size() && in_batch[size_t(i)] == p)
          ++i;
        else
          first_step_keys_[s].push_back(p);
    }
  }
  owned_.assign(size_t(r * u), {});
  for (int b = 0; b < r; ++b) {
    auto& chunk = chunks_[size_t(b)];
    std::sort(chunk.begin(), chunk.end());
    AttentionMetadata m{meta.block_size, {}, {}, meta.block_tables};
    std::vector<std::vector<int32_t>> keys(sequences);
    for (int64_t t : chunk) {
      m.positions.push_back(meta.positions[size_t(t)]);
      m.sequence_of_token.push_back(meta.sequence_of_token[size_t(t)]);
      keys[size_t(meta.sequence_of_token[size_t(t)])].push_back(meta.positions[size_t(t)]);
    }
    for (auto& k : keys) std::sort(k.begin(), k.end());
    chunk_metadata_.push_back(std::move(m));
    chunk_keys_.push_back(std::move(keys));
    for (int a = 0; a < u; ++a) {
      const auto [begin, end] = balanced_range(int64_t(chunk.size()), u, a);
      owned_[size_t(b * u + a)].assign(chunk.begin() + begin, chunk.begin() + end);
    }
  }
  for (size_t s = 0; s < sequences; ++s) {  // step 0: the cached context and this rank's own chunk
    const auto& own = chunk_keys_[size_t(groups.ring_rank())][s];
    first_step_keys_[s].insert(first_step_keys_[s].end(), own.begin(), own.end());
    std::sort(first_step_keys_[s].begin(), first_step_keys_[s].end());
  }
}

const std::vector<int64_t>& ContextParallelPlan::tokens(int ring, int ulysses) const {
  return owned_.at(size_t(ring * groups_.ulysses_degree() + ulysses));
}

std::vector<int32_t> ContextParallelPlan::local_token_ids() const {
  std::vector<int32_t> ids;
  for (int64_t t : local_tokens()) ids.push_back(batch_->token_ids[size_t(t)]);
  return ids;
}

std::vector<int32_t> ContextParallelPlan::local_positions() const {
  std::vector<int32_t> p;
  for (int64_t t : local_tokens()) p.push_back(batch_->attention.positions[size_t(t)]);
  return p;
}

std::vector<int64_t> ContextParallelPlan::local_logit_rows() const {
  const auto& mine = local_tokens();
  std::vector<int64_t> rows;
  for (int64_t token : batch_->logit_rows) {
    auto it = std::lower_bound(mine.begin(), mine.end(), token);
    if (it != mine.end() && *it == token) rows.push_back(it - mine.begin());
  }
  return rows;
}

Tensor ContextParallelPlan::gather_logit_rows(const Tensor& local_rows) const {
  const int r = groups_.ring_degree(), u = groups_.ulysses_degree();
  // Which logit-row indices each rank holds, in logit-row order: the gathered rows come rank by rank
  // (ulysses members inside each ring chunk, chunks in ring order).
  std::vector<std::vector<int64_t>> held(size_t(r * u));
  for (size_t i = 0; i < batch_->logit_rows.size(); ++i) {
    const int64_t token = batch_->logit_rows[i];
    for (size_t rank = 0; rank < owned_.size(); ++rank)
      if (std::binary_search(owned_[rank].begin(), owned_[rank].end(), token)) {
        held[rank].push_back(int64_t(i));
        break;
      }
  }
  Tensor rows = local_rows;
  const int b = groups_.ring_rank();
  if (u > 1) {
    std::vector<int64_t> counts;
    for (int a = 0; a < u; ++a) counts.push_back(int64_t(held[size_t(b * u + a)].size()));
    rows = groups_.ulysses->all_gather_rows(rows.contiguous(), counts);
  }
  if (r > 1) {
    std::vector<int64_t> counts(size_t(r), 0);
    for (int c = 0; c < r; ++c)
      for (int a = 0; a < u; ++a) counts[size_t(c)] += int64_t(held[size_t(c * u + a)].size());
    rows = groups_.ring->all_gather_rows(rows.contiguous(), counts);
  }
  Tensor out = Tensor::empty({int64_t(batch_->logit_rows.size()), rows.size(1)}, DType::F32);
  int64_t next = 0;
  for (const auto& list : held)
    for (int64_t i : list) copy_columns(out, 0, rows.slice(0, next, next + 1), 0, rows.size(1), i), ++next;
  return out;
}

Tensor context_parallel_attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t q_heads, int64_t kv_heads,
                                  int64_t head_dim, float scale, const ContextParallelPlan& plan, Tensor& k_cache,
                                  Tensor& v_cache) {
  const ContextParallelGroups& g = plan.groups();
  const int r = g.ring_degree(), u = g.ulysses_degree(), b = g.ring_rank(), a = g.ulysses_rank();
  const UlyssesHeads mine = ulysses_heads(q_heads, kv_heads, u, a);
  const int64_t qw = (mine.q_end - mine.q_begin) * head_dim, kw = (mine.kv_end - mine.kv_begin) * head_dim;
  const int64_t n = q.size(0);

  // Ulysses: every member sends each other member its tokens' q/k/v columns of that member's heads;
  // this rank receives its ring chunk's tokens (member by member, i.e. ascending) for its own heads.
  Tensor qc = q, kc = k, vc = v;
  std::vector<int64_t> member_rows(size_t(u), 0);
  for (int m = 0; m < u; ++m) member_rows[size_t(m)] = int64_t(plan.tokens(b, m).size());
  if (u > 1) {
    const int64_t width = qw + 2 * kw;
    Tensor send = Tensor::empty({u * n, width}, DType::F32);
    for (int m = 0; m < u; ++m) {
      const UlyssesHeads h = ulysses_heads(q_heads, kv_heads, u, m);
      copy_columns(send, 0, q, h.q_begin * head_dim, qw, m * n);
      copy_columns(send, qw, k, h.kv_begin * head_dim, kw, m * n);
      copy_columns(send, qw + kw, v, h.kv_begin * head_dim, kw, m * n);
    }
    Tensor got = g.ulysses->all_to_all_rows(send, std::vector<int64_t>(size_t(u), n), member_rows);
    qc = got.slice(1, 0, qw);
    kc = got.slice(1, qw, qw + kw);
    vc = got.slice(1, qw + kw, width);
  }
  const std::vector<int64_t>& chunk = plan.ring_chunk(b);
  const AttentionMetadata& qmeta = plan.chunk_metadata(b);
  write_kv_cache(kc, vc, k_cache, v_cache, qmeta);
  const int64_t qh = mine.q_end - mine.q_begin;

  Tensor attended;
  if (r == 1) {
    attended = paged_attention(qc, k_cache, v_cache, qmeta, qh, scale);  // the whole context is in the cache
  } else {
    // The ring: at step s this rank holds chunk (b - s) mod r, sends it on to b + 1 while attending
    // to it, and receives chunk (b - s - 1) mod r from b - 1.
    const int next = (b + 1) % r, prev = (b + r - 1) % r;
    Tensor kv = Tensor::empty({int64_t(chunk.size()), 2 * kw}, DType::F32);
    copy_columns(kv, 0, kc, 0, kw);
    copy_columns(kv, kw, vc, 0, kw);
    PartialAttention acc;
    for (int step = 0; step < r; ++step) {
      const int held = (b - step + r) % r;
      std::future<Tensor> incoming;
      if (step + 1 < r) {
        std::vector<int64_t> send_rows(size_t(r), 0), recv_rows(size_t(r), 0);
        send_rows[size_t(next)] = kv.size(0);
        recv_rows[size_t(prev)] = int64_t(plan.ring_chunk((held + r - 1) % r).size());
        // A big chunk travels on a helper thread while this one attends; a few rows (decode steps)
        // are cheaper to send at once than to start a thread for.
        incoming = std::async(
            kv.size(0) >= kOverlapRows ? std::launch::async : std::launch::deferred,
            [ring = g.ring, kv, send_rows, recv_rows] { return ring->all_to_all_rows(kv, send_rows, recv_rows); });
      }
      if (step > 0)
        write_kv_cache(kv.slice(1, 0, kw), kv.slice(1, kw, 2 * kw), k_cache, v_cache, plan.chunk_metadata(held));
      const auto& keys = step == 0 ? plan.first_step_keys() : plan.chunk_keys(held);
      PartialAttention part = partial_paged_attention(qc, k_cache, v_cache, qmeta, keys, qh, scale);
      if (step == 0)
        acc = std::move(part);
      else
        merge_partial_attention(acc, part);
      if (incoming.valid()) kv = incoming.get();
    }
    attended = acc.out;
  }

  if (u == 1) return attended;
  // Ulysses back: member m gets its tokens' rows of this rank's heads; this rank gets its own tokens'
  // rows of every member's heads and places them by head.
  Tensor back = g.ulysses->all_to_all_rows(attended.contiguous(), member_rows, std::vector<int64_t>(size_t(u), n));
  Tensor out = Tensor::empty({n, q_heads * head_dim}, DType::F32);
  for (int m = 0; m < u; ++m) {
    const UlyssesHeads h = ulysses_heads(q_heads, kv_heads, u, m);
    copy_columns(out, h.q_begin * head_dim, back.slice(0, m * n, (m + 1) * n), 0, qw);
  }
  return out;
}

}  // namespace troupe
