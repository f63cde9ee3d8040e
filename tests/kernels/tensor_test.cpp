#include <doctest/doctest.h>

#include <cstdint>

#include "kernels/error.hpp"
#include "kernels/tensor.hpp"

using namespace troupe;

TEST_CASE("tensor allocation is 64-byte aligned and contiguous") {
  Tensor t = Tensor::empty({3, 5}, DType::F32);
  CHECK(reinterpret_cast<uintptr_t>(t.raw()) % 64 == 0);
  CHECK(t.is_contiguous());
  CHECK(t.numel() == 15);
  CHECK(t.nbytes() == 60);
  CHECK(t.strides() == Shape{5, 1});
  CHECK(t.owns_memory());
}

TEST_CASE("slices are views and clone copies") {
  Tensor t = Tensor::from_floats({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor col = t.slice(1, 1, 3);
  CHECK_FALSE(col.is_contiguous());
  CHECK(col.to_floats() == std::vector<float>{1, 2, 4, 5});
  Tensor copy = col.clone();
  CHECK(copy.is_contiguous());
  t.data<float>()[1] = 42;
  CHECK(col.to_floats()[0] == 42);
  CHECK(copy.to_floats()[0] == 1);
  CHECK(t.row(1).to_floats() == std::vector<float>{3, 4, 5});
}

TEST_CASE("dtype conversions round-trip representable values") {
  Tensor t = Tensor::from_floats({1.0f, -2.5f, 0.15625f, 65504.0f, 0.0f, -0.0f}, {6});
  CHECK(t.to(DType::BF16).to(DType::F32).to_floats()[1] == -2.5f);
  CHECK(t.to(DType::F16).to_floats() == t.to_floats());
  CHECK(bf16_to_f32(f32_to_bf16(1.00390625f)) == 1.0f);                 // ties round to even
  CHECK(f16_to_f32(0x0001) == doctest::Approx(5.960464477539063e-08));  // smallest subnormal
  CHECK(f16_to_f32(f32_to_f16(1e6f)) == std::numeric_limits<float>::infinity());
}

TEST_CASE("bad views and slices are clear errors") {
  Tensor t = Tensor::zeros({4, 4}, DType::F32);
  CHECK_THROWS_AS(t.view({3, 5}), Error);
  CHECK_THROWS_AS(t.slice(0, 2, 5), Error);
  CHECK_THROWS_AS(t.slice(2, 0, 1), Error);
  CHECK_THROWS_WITH_AS(parse_dtype("f8"), doctest::Contains("unknown dtype 'f8'"), Error);
  CHECK(t.view({2, -1}).shape() == Shape{2, 8});
}

TEST_CASE("shapes whose element or byte count overflows are errors, not allocations") {
  CHECK_THROWS_WITH_AS(Tensor::empty({1ll << 40, 1ll << 40}, DType::F32), doctest::Contains("more elements than"),
                       Error);
  CHECK_THROWS_WITH_AS(Tensor::empty({1ll << 62}, DType::F32), doctest::Contains("more bytes than"), Error);
  CHECK_THROWS_WITH_AS(Tensor::empty({-2, 3}, DType::F32), doctest::Contains("negative dimension"), Error);
  // No element, but strides that overflow (found by tests/fuzz/intermediate_tensors_fuzz.cpp).
  CHECK_THROWS_WITH_AS(Tensor::empty({0, 1ll << 50, 1ll << 58}, DType::F32),
                       "tensor shape [0, 1125899906842624, 288230376151711744] has dimensions whose product (its "
                       "strides) int64 cannot count",
                       Error);
  CHECK_THROWS_AS(Tensor::borrow(nullptr, {1ll << 40, 0, 1ll << 40}, DType::U8, nullptr), Error);
  CHECK(Tensor::empty({0, 1ll << 20}, DType::F32).numel() == 0);
}
