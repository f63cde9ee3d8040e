#include "kernels/partial_attention.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/error.hpp"
#include "kernels/thread_pool.hpp"
#include "kernels/vector_math.hpp"

namespace troupe {

PartialAttention partial_paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                         const AttentionMetadata& meta,
                                         const std::vector<std::vector<int32_t>>& key_positions, int64_t q_heads,
                                         float scale) {
  const int64_t T = q.size(0);
  const int64_t kv_heads = k_cache.size(2), head_dim = k_cache.size(3);
  validate_attention_metadata(meta, T, k_cache.size(0), k_cache.size(1));
  if (q.size(1) != q_heads * head_dim) fail("attention: q {} is not {} heads of {}", q.describe(), q_heads, head_dim);
  if (q_heads % kv_heads) fail("attention: {} query heads do not group over {} kv heads", q_heads, kv_heads);
  if (key_positions.size() != meta.block_tables.size())
    fail("partial attention: key positions for {} sequences, the batch has {}", key_positions.size(),
         meta.block_tables.size());
  const int64_t bs = meta.block_size;
  for (size_t s = 0; s < key_positions.size(); ++s) {
    const int64_t limit = int64_t(meta.block_tables[s].size()) * bs;
    for (size_t i = 0; i < key_positions[s].size(); ++i) {
      const int32_t p = key_positions[s][i];
      if (p < 0 || p >= limit || (i > 0 && p <= key_positions[s][i - 1]))
        fail("partial attention: key position {} of sequence {} is not ascending inside its {} slots", p, s, limit);
    }
  }
  const int64_t group = q_heads / kv_heads, width = kv_heads * head_dim;
  PartialAttention r{Tensor::empty({T, q_heads * head_dim}, DType::F32), Tensor::empty({T, q_heads}, DType::F32)};
  parallel_for(T * q_heads, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    std::vector<int64_t> slots;
    std::vector<double> acc;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / q_heads, h = item % q_heads, g = h / group;
      const int32_t seq = meta.sequence_of_token[size_t(t)], pos = meta.positions[size_t(t)];
      const auto& table = meta.block_tables[size_t(seq)];
      const auto& keys = key_positions[size_t(seq)];
      const int64_t n = std::upper_bound(keys.begin(), keys.end(), pos) - keys.begin();
      float* oh = r.out.data<float>() + t * q_heads * head_dim + h * head_dim;
      std::memset(oh, 0, size_t(head_dim) * 4);
      if (n == 0) {
        r.lse.data<float>()[item] = -std::numeric_limits<float>::infinity();
        continue;
      }
      const float* qh = q.data<float>() + t * q.strides()[0] + h * head_dim;
      scores.resize(size_t(n));
      slots.resize(size_t(n));
      float max_score = -std::numeric_limits<float>::infinity();
      for (int64_t i = 0; i < n; ++i) {
        const int32_t p = keys[size_t(i)];
        slots[size_t(i)] = int64_t(table[size_t(p / bs)]) * bs + p % bs;
        scores[size_t(i)] =
            vec::dot(qh, k_cache.data<float>() + slots[size_t(i)] * width + g * head_dim, head_dim) * scale;
        max_score = std::max(max_score, scores[size_t(i)]);
      }
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += double(scores[size_t(i)] = std::exp(scores[size_t(i)] - max_score));
      acc.assign(size_t(head_dim), 0.0);
      for (int64_t i = 0; i < n; ++i) {
        const float* vrow = v_cache.data<float>() + slots[size_t(i)] * width + g * head_dim;
        for (int64_t d = 0; d < head_dim; ++d) acc[size_t(d)] += double(scores[size_t(i)]) * vrow[d];
      }
      for (int64_t d = 0; d < head_dim; ++d) oh[d] = float(acc[size_t(d)] / sum);
      r.lse.data<float>()[item] = max_score + float(std::log(sum));
    }
  });
  return r;
}

void merge_partial_attention(PartialAttention& acc, const PartialAttention& part) {
  if (acc.out.shape() != part.out.shape() || acc.lse.shape() != part.lse.shape())
    fail("merge of partial attention: {} / {} against {} / {}", acc.out.describe(), acc.lse.describe(),
         part.out.describe(), part.lse.describe());
  const int64_t items = acc.lse.numel(), head_dim = items ? acc.out.numel() / items : 0;
  parallel_for(items, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float l1 = acc.lse.data<float>()[i], l2 = part.lse.data<float>()[i];
      if (std::isinf(l2)) continue;  // the part saw no key for this query
      float* o1 = acc.out.data<float>() + i * head_dim;
      const float* o2 = part.out.data<float>() + i * head_dim;
      if (std::isinf(l1)) {
        std::memcpy(o1, o2, size_t(head_dim) * 4);
        acc.lse.data<float>()[i] = l2;
        continue;
      }
      const double m = std::max(l1, l2), w1 = std::exp(l1 - m), w2 = std::exp(l2 - m), total = w1 + w2;
      const double a = w1 / total, b = w2 / total;
      for (int64_t d = 0; d < head_dim; ++d) o1[d] = float(a * o1[d] + b * o2[d]);
      acc.lse.data<float>()[i] = float(m + std::log(total));
    }
  });
}

}  // namespace troupe
