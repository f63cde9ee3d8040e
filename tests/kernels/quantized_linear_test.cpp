// Quantized panels (WeightFormat::Q8_0 / Q4_0): a quantized weight gives, bit for bit, the outputs of
// the f32 weight holding its dequantized values, for every batch size, shape and kernel (the suite
// also runs under --cpu=avx2 and --cpu=scalar).
#include <doctest/doctest.h>

#include <random>

#include "kernels/linear.hpp"
#include "kernels/quant_blocks.hpp"

using namespace troupe;

namespace {

Tensor random_matrix(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.1f);
  std::vector<float> v(size_t(rows * cols));
  for (auto& x : v) x = dist(rng);
  return Tensor::from_floats(v, {rows, cols});
}

// Each row's 32-blocks quantized to `type` and back, as f32.
Tensor dequantized(const Tensor& w, GgmlType type) {
  const int64_t n = w.size(0), k = w.size(1);
  Tensor out = Tensor::empty({n, k}, DType::F32);
  std::string bytes(size_t(ggml_row_bytes(type, k)), '\0');
  for (int64_t r = 0; r < n; ++r) {
    quantize_row(type, w.data<float>() + r * k, bytes.data(), k);
    dequantize_row(type, bytes.data(), out.data<float>() + r * k, k);
  }
  return out;
}

}  // namespace

TEST_CASE("quantized linear equals the f32 linear over the dequantized weight, bit for bit") {
  for (auto [format, type] :
       {std::pair{WeightFormat::Q8_0, GgmlType::Q8_0}, std::pair{WeightFormat::Q4_0, GgmlType::Q4_0}})
    for (int64_t K : {32, 64, 96, 256})
      for (int64_t N : {1, 31, 32, 33, 100})
        for (int64_t M : {1, 2, 3, 4, 7}) {
          INFO(weight_format_name(format), " M=", M, " N=", N, " K=", K);
          const Tensor w = random_matrix(N, K, uint32_t(N * 1000 + K));
          const Tensor x = random_matrix(M, K, uint32_t(M + 7));
          const Tensor bias = random_matrix(1, N, 3).view({N});
          const PackedWeight quantized(w, format);
          REQUIRE(quantized.format() == format);
          const PackedWeight reference(dequantized(w, type));
          CHECK(linear(x, quantized, bias).to_floats() == linear(x, reference, bias).to_floats());
          CHECK(linear(x, quantized).to_floats() == linear(x, reference).to_floats());
        }
}

TEST_CASE("quantized panels: size per weight, bf16 input, and rows not a whole number of blocks stay float") {
  const Tensor w = random_matrix(64, 256, 1);
  CHECK(PackedWeight(w, WeightFormat::Q8_0).nbytes() == size_t(64 * 256 * 34 / 32));
  CHECK(PackedWeight(w, WeightFormat::Q4_0).nbytes() == size_t(64 * 256 * 18 / 32));
  // bf16 weights quantize from their values.
  const Tensor w16 = w.to(DType::BF16);
  const Tensor x = random_matrix(3, 256, 2);
  CHECK(linear(x, PackedWeight(w16, WeightFormat::Q8_0)).to_floats() ==
        linear(x, PackedWeight(dequantized(w16.to(DType::F32), GgmlType::Q8_0))).to_floats());
  // K = 48: not whole blocks, the weight keeps its float panels and its exact values.
  const Tensor odd = random_matrix(40, 48, 3);
  const PackedWeight kept(odd, WeightFormat::Q4_0);
  CHECK(kept.format() == WeightFormat::Float);
  const Tensor xo = random_matrix(2, 48, 4);
  CHECK(linear(xo, kept).to_floats() == linear(xo, PackedWeight(odd)).to_floats());
  // A column slice of a larger matrix (a row-parallel shard) on a block boundary packs alike.
  const Tensor shard = w.slice(1, 64, 192);
  CHECK(linear(random_matrix(1, 128, 5), PackedWeight(shard, WeightFormat::Q8_0)).to_floats() ==
        linear(random_matrix(1, 128, 5), PackedWeight(dequantized(shard.contiguous(), GgmlType::Q8_0))).to_floats());
}
