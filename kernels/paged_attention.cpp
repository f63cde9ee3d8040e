#include "kernels/paged_attention.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/error.hpp"
#include "kernels/thread_pool.hpp"
#include "kernels/vector_math.hpp"

namespace troupe {

void validate_attention_metadata(const AttentionMetadata& meta, int64_t num_tokens, int64_t num_blocks,
                                 int64_t block_size) {
  if (meta.block_size != block_size)
    fail("attention: the batch is laid out in blocks of {} slots but the kv cache's blocks hold {}", meta.block_size,
         block_size);
  if (block_size < 1) fail("attention: block_size ({}) must be at least 1", block_size);
  if (int64_t(meta.positions.size()) != num_tokens || int64_t(meta.sequence_of_token.size()) != num_tokens)
    fail("attention: {} tokens but {} positions and {} sequence indices", num_tokens, meta.positions.size(),
         meta.sequence_of_token.size());
  for (const auto& table : meta.block_tables)
    for (int32_t block : table)
      if (block < 0 || (num_blocks >= 0 && block >= num_blocks))
        num_blocks < 0 ? fail("attention: block {} is not a block of a kv cache", block)
                       : fail("attention: block {} is outside the kv cache of {} blocks", block, num_blocks);
  for (int64_t t = 0; t < num_tokens; ++t) {
    const int32_t s = meta.sequence_of_token[size_t(t)], pos = meta.positions[size_t(t)];
    if (s < 0 || size_t(s) >= meta.block_tables.size())
      fail("attention: token {} belongs to sequence {} of a batch of {} sequences", t, s, meta.block_tables.size());
    if (pos < 0 || pos / block_size >= int64_t(meta.block_tables[size_t(s)].size()))
      fail("attention: token {} at position {} lies outside its sequence's {} blocks of {} slots", t, pos,
           meta.block_tables[size_t(s)].size(), block_size);
  }
}

int64_t kv_slot(const AttentionMetadata& meta, int64_t token) {
  const auto& table = meta.block_tables[size_t(meta.sequence_of_token[size_t(token)])];
  int64_t pos = meta.positions[size_t(token)];
  int64_t logical = pos / meta.block_size;
  if (logical >= int64_t(table.size()))
    fail("attention: position {} needs logical block {} but the sequence holds {} blocks", pos, logical, table.size());
  return int64_t(table[size_t(logical)]) * meta.block_size + pos % meta.block_size;
}

void write_kv_cache(const Tensor& k, const Tensor& v, Tensor& k_cache, Tensor& v_cache, const AttentionMetadata& meta) {
  const int64_t T = k.size(0), width = k.size(1);
  validate_attention_metadata(meta, T, k_cache.size(0), k_cache.size(1));
  if (k_cache.size(2) * k_cache.size(3) != width)
    fail("kv cache {} does not hold rows of {}", k_cache.describe(), k.describe());
  const int64_t slots = k_cache.size(0) * k_cache.size(1);
  for (int64_t t = 0; t < T; ++t) {
    int64_t slot = kv_slot(meta, t);
    if (slot < 0 || slot >= slots) fail("kv slot {} outside the cache of {} slots", slot, slots);
    std::memcpy(k_cache.data<float>() + slot * width, k.data<float>() + t * k.strides()[0], size_t(width) * 4);
    std::memcpy(v_cache.data<float>() + slot * width, v.data<float>() + t * v.strides()[0], size_t(width) * 4);
  }
}

Tensor paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const AttentionMetadata& meta,
                       int64_t q_heads, float scale) {
  const int64_t T = q.size(0);
  const int64_t kv_heads = k_cache.size(2), head_dim = k_cache.size(3);
  validate_attention_metadata(meta, T, k_cache.size(0), k_cache.size(1));
  if (q.size(1) != q_heads * head_dim) fail("attention: q {} is not {} heads of {}", q.describe(), q_heads, head_dim);
  if (q_heads % kv_heads) fail("attention: {} query heads do not group over {} kv heads", q_heads, kv_heads);
  const int64_t group = q_heads / kv_heads;
  const int64_t width = kv_heads * head_dim;
  const int64_t bs = meta.block_size;
  Tensor out = Tensor::empty({T, q_heads * head_dim}, DType::F32);
  parallel_for(T * q_heads, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    std::vector<double> acc;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / q_heads, h = item % q_heads, g = h / group;
      const auto& table = meta.block_tables[size_t(meta.sequence_of_token[size_t(t)])];
      const int64_t ctx = int64_t(meta.positions[size_t(t)]) + 1;
      const float* qh = q.data<float>() + t * q.strides()[0] + h * head_dim;
      scores.resize(size_t(ctx));
      for (int64_t p = 0; p < ctx; ++p) {
        int64_t slot = int64_t(table[size_t(p / bs)]) * bs + p % bs;
        scores[size_t(p)] = vec::dot(qh, k_cache.data<float>() + slot * width + g * head_dim, head_dim) * scale;
      }
      // Softmax and the weighted sum of values accumulate in double: a long context adds thousands of
      // terms, and the result then matches attention computed in parts (partial_attention.hpp).
      float max_score = scores[0];
      for (int64_t p = 1; p < ctx; ++p) max_score = std::max(max_score, scores[size_t(p)]);
      double sum = 0;
      for (int64_t p = 0; p < ctx; ++p) sum += double(scores[size_t(p)] = std::exp(scores[size_t(p)] - max_score));
      acc.assign(size_t(head_dim), 0.0);
      for (int64_t p = 0; p < ctx; ++p) {
        int64_t slot = int64_t(table[size_t(p / bs)]) * bs + p % bs;
        const float* vrow = v_cache.data<float>() + slot * width + g * head_dim;
        for (int64_t d = 0; d < head_dim; ++d) acc[size_t(d)] += double(scores[size_t(p)]) * vrow[d];
      }
      float* oh = out.data<float>() + t * q_heads * head_dim + h * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) oh[d] = float(acc[size_t(d)] / sum);
    }
  });
  return out;
}

}  // namespace troupe
