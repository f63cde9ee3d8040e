#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/activation.hpp"
#include "kernels/embedding.hpp"
#include "kernels/error.hpp"
#include "kernels/paged_attention.hpp"
#include "kernels/rms_norm.hpp"
#include "kernels/rotary_embedding.hpp"
#include "kernels/sampling.hpp"

using namespace troupe;

TEST_CASE("rms_norm and add_rms_norm") {
  Tensor x = Tensor::from_floats({1, 2, 3, 4}, {1, 4});
  Tensor w = Tensor::from_floats({1, 1, 2, 2}, {4});
  Tensor out = Tensor::empty({1, 4}, DType::F32);
  rms_norm(x, w, 0.0f, out);
  float rms = std::sqrt((1 + 4 + 9 + 16) / 4.0f);
  CHECK(out.to_floats()[3] == doctest::Approx(4 / rms * 2));
  Tensor residual = Tensor::from_floats({1, 1, 1, 1}, {1, 4});
  Tensor h = x.clone();
  add_rms_norm(h, residual, w, 0.0f);
  CHECK(residual.to_floats() == std::vector<float>{2, 3, 4, 5});
  float rms2 = std::sqrt((4 + 9 + 16 + 25) / 4.0f);
  CHECK(h.to_floats()[0] == doctest::Approx(2 / rms2));
}

TEST_CASE("rotary embedding rotates pairs (i, i + d/2) by position * inv_freq") {
  RotaryEmbedding rope(4, 10000.0f, {});
  Tensor q = Tensor::from_floats({1, 0, 0, 0}, {1, 4});
  Tensor k = Tensor::from_floats({0, 1, 0, 0}, {1, 4});
  rope.apply(q, k, {3});
  auto qv = q.to_floats();
  CHECK(qv[0] == doctest::Approx(std::cos(3.0f)));
  CHECK(qv[2] == doctest::Approx(std::sin(3.0f)));
  float f1 = 1.0f / std::pow(10000.0f, 0.5f);
  CHECK(k.to_floats()[3] == doctest::Approx(std::sin(3 * f1)));
  // llama3 scaling leaves high frequencies alone and divides low ones by the factor.
  RopeScaling s{RopeScaling::Type::Llama3, 8.0f, 1.0f, 4.0f, 8192};
  RotaryEmbedding scaled(128, 500000.0f, s), plain(128, 500000.0f, {});
  CHECK(scaled.inv_freq()[0] == plain.inv_freq()[0]);
  CHECK(scaled.inv_freq()[63] == doctest::Approx(plain.inv_freq()[63] / 8));
}

TEST_CASE("silu_and_mul") {
  Tensor gu = Tensor::from_floats({1, -2, 3, 4}, {1, 4});
  auto out = silu_and_mul(gu).to_floats();
  CHECK(out[0] == doctest::Approx(1 / (1 + std::exp(-1.0f)) * 3));
  CHECK(out[1] == doctest::Approx(-2 / (1 + std::exp(2.0f)) * 4));
}

TEST_CASE("embedding gathers rows and rejects out-of-range ids") {
  Tensor table = Tensor::from_floats({0, 1, 10, 11, 20, 21}, {3, 2});
  CHECK(embedding(table, {2, 0}).to_floats() == std::vector<float>{20, 21, 0, 1});
  CHECK(embedding(table.to(DType::BF16), {1}).to_floats() == std::vector<float>{10, 11});
  CHECK_THROWS_WITH_AS(embedding(table, {3}), "token id 3 is out of range for vocab_size 3", Error);
  CHECK(embedding_shard(table, {4, 7}, 2).to_floats() == std::vector<float>{20, 21, 0, 0});
}

TEST_CASE("paged attention equals dense causal attention with scattered blocks and GQA") {
  const int64_t heads = 4, kv_heads = 2, D = 8, T = 5, bs = 2;
  std::vector<float> qv(T * heads * D), kv(T * kv_heads * D), vv(T * kv_heads * D);
  for (size_t i = 0; i < qv.size(); ++i) qv[i] = std::sin(float(i));
  for (size_t i = 0; i < kv.size(); ++i) kv[i] = std::cos(float(i) * 0.7f), vv[i] = std::sin(float(i) * 1.3f);
  Tensor q = Tensor::from_floats(qv, {T, heads * D}), k = Tensor::from_floats(kv, {T, kv_heads * D}),
         v = Tensor::from_floats(vv, {T, kv_heads * D});
  Tensor kc = Tensor::zeros({6, bs, kv_heads, D}, DType::F32), vc = Tensor::zeros({6, bs, kv_heads, D}, DType::F32);
  std::vector<int32_t> table = {4, 1, 5};  // physical blocks out of order
  AttentionMetadata meta;
  meta.block_size = bs;
  meta.positions = {0, 1, 2, 3, 4};
  meta.sequence_of_token = {0, 0, 0, 0, 0};
  meta.block_tables = {table};
  write_kv_cache(k, v, kc, vc, meta);
  auto out = paged_attention(q, kc, vc, meta, heads, 0.5f).to_floats();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < heads; ++h) {
      int64_t g = h / (heads / kv_heads);
      std::vector<double> s(size_t(t + 1));
      double mx = -1e30, sum = 0;
      for (int64_t p = 0; p <= t; ++p) {
        double d = 0;
        for (int64_t i = 0; i < D; ++i)
          d += qv[size_t(t * heads * D + h * D + i)] * kv[size_t(p * kv_heads * D + g * D + i)];
        s[size_t(p)] = d * 0.5;
        mx = std::max(mx, s[size_t(p)]);
      }
      for (auto& x : s) sum += (x = std::exp(x - mx));
      for (int64_t i = 0; i < D; ++i) {
        double o = 0;
        for (int64_t p = 0; p <= t; ++p) o += s[size_t(p)] / sum * vv[size_t(p * kv_heads * D + g * D + i)];
        CHECK(out[size_t(t * heads * D + h * D + i)] == doctest::Approx(o).epsilon(1e-5));
      }
    }
}

TEST_CASE("sampling: greedy is argmax, seeded sampling is reproducible and respects top-k/top-p") {
  std::vector<float> logits = {0.1f, 2.0f, 1.9f, -1.0f, 2.0f};
  CHECK(argmax(logits.data(), 5) == 1);  // lowest index on ties
  Sampler greedy(SamplingParams{});
  CHECK(greedy.sample(logits.data(), 5, 0) == 1);
  auto draw = [&](SamplingParams p, int n) {
    Sampler s(p);
    std::vector<int> out;
    for (int i = 0; i < n; ++i) out.push_back(s.sample(logits.data(), 5, i));  // one draw per position
    return out;
  };
  SamplingParams hot{1.0f, 1.0f, 0, 42};
  CHECK(draw(hot, 50) == draw(hot, 50));
  // A draw depends on (seed, position) alone: a fresh sampler at position 37 (a sequence recomputed
  // on a restarted rank) draws what the one that drew positions 0..36 first does.
  CHECK(Sampler(hot).sample(logits.data(), 5, 37) == draw(hot, 38).back());
  SamplingParams other_seed = hot;
  other_seed.seed = 43;
  CHECK(draw(hot, 64) != draw(other_seed, 64));
  auto many = draw(hot, 400);
  CHECK(std::count(many.begin(), many.end(), 0) > 0);  // all tokens reachable without filters
  SamplingParams top2{1.0f, 1.0f, 2, 7};
  for (int t : draw(top2, 200)) CHECK((t == 1 || t == 4));
  SamplingParams nucleus{1.0f, 0.3f, 0, 9};
  for (int t : draw(nucleus, 200)) CHECK((t == 1 || t == 4));
  CHECK_THROWS_AS((SamplingParams{-1.0f}.validate()), Error);
  CHECK_THROWS_AS((SamplingParams{1.0f, 0.0f}.validate()), Error);
  CHECK_THROWS_AS((SamplingParams{1.0f, 1.0f, -3}.validate()), Error);
}

TEST_CASE("paged attention refuses metadata that does not fit its cache, before reading it") {
  const int64_t heads = 2, D = 4, bs = 2;
  Tensor q = Tensor::zeros({1, heads * D}, DType::F32), k = Tensor::zeros({1, heads * D}, DType::F32);
  Tensor kc = Tensor::zeros({3, bs, heads, D}, DType::F32), vc = Tensor::zeros({3, bs, heads, D}, DType::F32);
  AttentionMetadata meta;
  meta.block_size = bs;
  meta.positions = {2};  // the decode token sits in logical block 1; it reads logical block 0 too
  meta.sequence_of_token = {0};
  meta.block_tables = {{2, 1}};
  write_kv_cache(k, k, kc, vc, meta);
  CHECK(paged_attention(q, kc, vc, meta, heads, 1.0f).size(0) == 1);
  auto bad = meta;
  bad.block_tables = {{1 << 20, 1}};  // a block only read (never written) used to be read out of bounds
  CHECK_THROWS_WITH_AS(paged_attention(q, kc, vc, bad, heads, 1.0f),
                       "attention: block 1048576 is outside the kv cache of 3 blocks", Error);
  bad = meta;
  bad.block_size = 0;  // used to divide by zero
  CHECK_THROWS_WITH_AS(write_kv_cache(k, k, kc, vc, bad),
                       "attention: the batch is laid out in blocks of 0 slots but the kv cache's blocks hold 2", Error);
  CHECK_THROWS_WITH_AS(paged_attention(q, kc, vc, bad, heads, 1.0f),
                       "attention: the batch is laid out in blocks of 0 slots but the kv cache's blocks hold 2", Error);
  bad = meta;
  bad.sequence_of_token = {1};
  CHECK_THROWS_WITH_AS(paged_attention(q, kc, vc, bad, heads, 1.0f),
                       "attention: token 0 belongs to sequence 1 of a batch of 1 sequences", Error);
}
