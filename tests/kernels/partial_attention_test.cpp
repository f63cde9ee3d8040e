// Partial attention over disjoint key sets, merged by log-sum-exp, equals attention over their union.
#include <doctest/doctest.h>

#include <cmath>

#include "kernels/error.hpp"
#include "kernels/partial_attention.hpp"

using namespace troupe;

namespace {

struct Fixture {
  static constexpr int64_t heads = 4, kv_heads = 2, D = 8, T = 11, bs = 4;
  Tensor q, kc, vc;
  AttentionMetadata meta;
  Fixture() {
    std::vector<float> qv(T * heads * D), kv(T * kv_heads * D), vv(T * kv_heads * D);
    for (size_t i = 0; i < qv.size(); ++i) qv[i] = std::sin(float(i) * 0.3f);
    for (size_t i = 0; i < kv.size(); ++i) kv[i] = std::cos(float(i) * 0.7f), vv[i] = std::sin(float(i) * 1.3f);
    q = Tensor::from_floats(qv, {T, heads * D});
    kc = Tensor::zeros({5, bs, kv_heads, D}, DType::F32);
    vc = Tensor::zeros({5, bs, kv_heads, D}, DType::F32);
    meta.block_size = bs;
    meta.block_tables = {{3, 0, 4}};  // physical blocks out of order
    for (int32_t t = 0; t < int32_t(T); ++t) meta.positions.push_back(t), meta.sequence_of_token.push_back(0);
    write_kv_cache(Tensor::from_floats(kv, {T, kv_heads * D}), Tensor::from_floats(vv, {T, kv_heads * D}), kc, vc,
                   meta);
  }
};

}  // namespace

TEST_CASE("partial attention over zig-zag key chunks merges to whole-context attention") {
  Fixture f;
  const Tensor whole = paged_attention(f.q, f.kc, f.vc, f.meta, f.heads, 0.4f);
  // Three disjoint, interleaved key sets covering positions 0..10 (as ring chunks cover a sequence).
  const std::vector<std::vector<int32_t>> parts[] = {{{0, 1, 9, 10}}, {{2, 3, 7, 8}}, {{4, 5, 6}}};
  PartialAttention acc = partial_paged_attention(f.q, f.kc, f.vc, f.meta, parts[0], f.heads, 0.4f);
  // Token 0 sees key 0 in the first part; every other part has no key at or before position 1 for it.
  CHECK(std::isinf(partial_paged_attention(f.q, f.kc, f.vc, f.meta, parts[1], f.heads, 0.4f).lse.data<float>()[0]));
  for (int i = 1; i < 3; ++i)
    merge_partial_attention(acc, partial_paged_attention(f.q, f.kc, f.vc, f.meta, parts[i], f.heads, 0.4f));
  for (int64_t i = 0; i < whole.numel(); ++i)
    CHECK(acc.out.data<float>()[i] == doctest::Approx(whole.data<float>()[i]).epsilon(1e-6));
}

TEST_CASE("partial attention with no keys gives zero and -inf, and a merge with it changes nothing") {
  Fixture f;
  PartialAttention all =
      partial_paged_attention(f.q, f.kc, f.vc, f.meta, {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}, f.heads, 1.0f);
  const Tensor before = all.out.clone();
  PartialAttention none = partial_paged_attention(f.q, f.kc, f.vc, f.meta, {{}}, f.heads, 1.0f);
  CHECK(none.out.data<float>()[5] == 0.0f);
  CHECK(std::isinf(none.lse.data<float>()[5]));
  merge_partial_attention(all, none);
  for (int64_t i = 0; i < before.numel(); ++i) CHECK(all.out.data<float>()[i] == before.data<float>()[i]);
  merge_partial_attention(none, all);  // the empty side takes the other's values
  for (int64_t i = 0; i < before.numel(); ++i) CHECK(none.out.data<float>()[i] == before.data<float>()[i]);
}

TEST_CASE("partial attention refuses key positions that are unordered or outside the sequence's blocks") {
  Fixture f;
  CHECK_THROWS_WITH_AS(partial_paged_attention(f.q, f.kc, f.vc, f.meta, {{3, 2}}, f.heads, 1.0f),
                       "partial attention: key position 2 of sequence 0 is not ascending inside its 12 slots", Error);
  CHECK_THROWS_WITH_AS(partial_paged_attention(f.q, f.kc, f.vc, f.meta, {{12}}, f.heads, 1.0f),
                       "partial attention: key position 12 of sequence 0 is not ascending inside its 12 slots", Error);
  CHECK_THROWS_WITH_AS(partial_paged_attention(f.q, f.kc, f.vc, f.meta, {{1}, {2}}, f.heads, 1.0f),
                       "partial attention: key positions for 2 sequences, the batch has 1", Error);
}
