// The tensor-parallel layers against their unsharded selves: ranks are threads (ThreadTpGroup), the
// weights a small random checkpoint. Column outputs are exact (each output sums over the same k in
// the same order); a row-parallel product is a sum of per-rank partials, equal up to rounding.
#include <doctest/doctest.h>

#include <filesystem>
#include <random>

#include "kernels/error.hpp"
#include "model/parallel_linear.hpp"
#include "model/safetensors_file.hpp"
#include "model/vocab_parallel_embedding.hpp"
#include "tests/model/thread_tp_group.hpp"

using namespace troupe;
namespace fs = std::filesystem;

namespace {

Tensor random_matrix(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(size_t(rows * cols));
  for (auto& x : v) x = dist(gen);
  return Tensor::from_floats(v, {rows, cols});
}

// A checkpoint folder holding `tensors`, removed with the fixture.
struct Checkpoint {
  fs::path dir;
  WeightStore store;
  explicit Checkpoint(const std::map<std::string, Tensor>& tensors)
      : dir(fs::temp_directory_path() / ("troupe_parallel_linear_" + std::to_string(::getpid()))) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    write_safetensors(dir / "model.safetensors", tensors);
    store = WeightStore::open(dir);
  }
  ~Checkpoint() { fs::remove_all(dir); }
};

// Runs body(rank, group) on `size` threads and returns each rank's result.
std::vector<Tensor> on_ranks(int size, const std::function<Tensor(TpGroup)>& body) {
  std::vector<Tensor> out(static_cast<size_t>(size));
  test::ThreadTpGroup(size).run([&](int rank, TensorParallelOps& ops) {
    out[size_t(rank)] = body({rank, size, &ops});
  });
  return out;
}

// Row-major values of the column ranges [begin, end) of t, side by side.
std::vector<float> columns(const Tensor& t, const std::vector<std::pair<int64_t, int64_t>>& ranges) {
  std::vector<float> out;
  for (int64_t m = 0; m < t.size(0); ++m)
    for (auto [b, e] : ranges) {
      auto row = t.slice(0, m, m + 1).slice(1, b, e).contiguous().to_floats();
      out.insert(out.end(), row.begin(), row.end());
    }
  return out;
}

}  // namespace

TEST_CASE("column-parallel then row-parallel over 2 and 3 shards equals the unsharded pair") {
  const int64_t hidden = 8, inner = 7;  // 7 does not split evenly
  for (DType dtype : {DType::F32, DType::BF16}) {
    Checkpoint ckpt({{"up.weight", random_matrix(inner, hidden, 1).to(dtype)},
                     {"down.weight", random_matrix(hidden, inner, 2).to(dtype)}});
    Tensor x = random_matrix(3, hidden, 3);
    auto pair = [&](TpGroup g) {
      ColumnParallelLinear up(ckpt.store, "up", inner, hidden, g);
      RowParallelLinear down(ckpt.store, "down", hidden, inner, g);
      return down.forward(up.forward(x));
    };
    const std::vector<float> whole = pair(TpGroup{}).to_floats();
    for (int size : {2, 3}) {
      CAPTURE(size);
      auto got = on_ranks(size, pair);
      for (const Tensor& t : got) {
        CHECK(t.to_floats() == got[0].to_floats());  // the all-reduce leaves every rank the same sum
        auto v = t.to_floats();
        for (size_t i = 0; i < v.size(); ++i) CHECK(v[i] == doctest::Approx(whole[i]).epsilon(1e-5));
      }
    }
  }
}

TEST_CASE("row-parallel without reduce_results returns this rank's partial sum") {
  Checkpoint ckpt({{"down.weight", random_matrix(4, 6, 4)}});
  Tensor x = random_matrix(2, 6, 5);
  const auto whole = RowParallelLinear(ckpt.store, "down", 4, 6, TpGroup{}).forward(x).to_floats();
  auto partials = on_ranks(2, [&](TpGroup g) {
    auto [b, e] = g.part(6);
    return RowParallelLinear(ckpt.store, "down", 4, 6, g, /*reduce_results=*/false)
        .forward(x.slice(1, b, e).contiguous());
  });
  auto p0 = partials[0].to_floats(), p1 = partials[1].to_floats();
  CHECK(p0 != p1);
  for (size_t i = 0; i < whole.size(); ++i) CHECK(p0[i] + p1[i] == doctest::Approx(whole[i]).epsilon(1e-5));
}

TEST_CASE("column-parallel with gather_output and the LM head equal the unsharded linear bit for bit") {
  const int64_t vocab = 11, hidden = 8;
  Checkpoint ckpt({{"lm_head.weight", random_matrix(vocab, hidden, 6).to(DType::BF16)}});
  Tensor x = random_matrix(3, hidden, 7);
  const auto whole = ColumnParallelLinear(ckpt.store, "lm_head", vocab, hidden, TpGroup{}).forward(x).to_floats();
  for (int size : {2, 3, 4}) {
    CAPTURE(size);
    for (const Tensor& t : on_ranks(size, [&](TpGroup g) {
           return ColumnParallelLinear(ckpt.store, "lm_head", vocab, hidden, g, /*gather_output=*/true).forward(x);
         }))
      CHECK(t.to_floats() == whole);
    for (const Tensor& t :
         on_ranks(size, [&](TpGroup g) { return ParallelLMHead(ckpt.store, "lm_head", vocab, hidden, g).forward(x); }))
      CHECK(t.to_floats() == whole);
  }
}

TEST_CASE("merged column-parallel stacks this rank's rows of each matrix") {
  const int64_t inner = 5, hidden = 8;
  Checkpoint ckpt({{"gate.weight", random_matrix(inner, hidden, 8)}, {"up.weight", random_matrix(inner, hidden, 9)}});
  Tensor x = random_matrix(2, hidden, 10);
  auto merged = [&](TpGroup g) { return MergedColumnParallelLinear(ckpt.store, {"gate", "up"}, inner, hidden, g); };
  const Tensor whole = merged(TpGroup{}).forward(x);  // [gate | up]
  auto got = on_ranks(2, [&](TpGroup g) { return merged(g).forward(x); });
  for (int r = 0; r < 2; ++r) {
    auto [b, e] = balanced_range(inner, 2, r);
    CHECK(got[size_t(r)].to_floats() == columns(whole, {{b, e}, {inner + b, inner + e}}));
  }
}

TEST_CASE("QKV-parallel keeps this rank's query heads and replicates a kv head when kv_heads < tp") {
  ModelConfig c;
  c.hidden_size = 8, c.num_attention_heads = 4, c.num_key_value_heads = 1, c.head_dim = 2, c.attention_bias = true;
  std::map<std::string, Tensor> tensors;
  uint32_t seed = 20;
  for (const char* proj : {"q_proj", "k_proj", "v_proj"}) {
    const int64_t rows = proj[0] == 'q' ? c.q_size() : c.kv_size();
    tensors[std::string("attn.") + proj + ".weight"] = random_matrix(rows, c.hidden_size, seed++);
    tensors[std::string("attn.") + proj + ".bias"] = random_matrix(1, rows, seed++).view({rows});
  }
  Checkpoint ckpt(tensors);
  Tensor x = random_matrix(3, c.hidden_size, 30);
  QKVParallelLinear whole_layer(ckpt.store, "attn", c, TpGroup{});
  const Tensor whole = whole_layer.forward(x);  // [q (8) | k (2) | v (2)]
  CHECK(whole_layer.local_q_heads() == 4);
  CHECK(whole_layer.local_kv_heads() == 1);
  auto got = on_ranks(2, [&](TpGroup g) {
    QKVParallelLinear qkv(ckpt.store, "attn", c, g);
    CHECK(qkv.local_q_heads() == 2);
    CHECK(qkv.local_kv_heads() == 1);
    return qkv.forward(x);
  });
  for (int r = 0; r < 2; ++r) {
    // Query heads 2r, 2r + 1; both ranks hold kv head 0 (k then v).
    CHECK(got[size_t(r)].to_floats() == columns(whole, {{r * 4, (r + 1) * 4}, {8, 12}}));
  }
}

TEST_CASE("vocab-parallel embedding: every rank gets the full lookup, and ids outside the vocabulary are errors") {
  const int64_t vocab = 7, hidden = 4;
  Checkpoint ckpt({{"embed.weight", random_matrix(vocab, hidden, 40).to(DType::BF16)}});
  const std::vector<int32_t> ids = {0, 6, 3, 3, 5};
  const auto whole = VocabParallelEmbedding(ckpt.store, "embed", vocab, hidden, TpGroup{}).forward(ids).to_floats();
  for (int size : {2, 3})
    for (const Tensor& t : on_ranks(size, [&](TpGroup g) {
           return VocabParallelEmbedding(ckpt.store, "embed", vocab, hidden, g).forward(ids);
         }))
      CHECK(t.to_floats() == whole);
  VocabParallelEmbedding one(ckpt.store, "embed", vocab, hidden, TpGroup{});
  CHECK_THROWS_WITH_AS(one.forward({7}), "token id 7 is out of range for vocab_size 7", Error);
}

TEST_CASE("a split layout without collectives is refused") {
  ParallelLayout layout;
  layout.tp_size = 2;
  CHECK_THROWS_WITH_AS(TpGroup::of(layout, nullptr), "tensor_parallel_size 2 needs tensor-parallel collectives", Error);
  layout.tp_size = 1;
  CHECK(TpGroup::of(layout, nullptr).size == 1);
}
