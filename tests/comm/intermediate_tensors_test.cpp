// IntermediateTensors wire headers from a peer (the bounds decode_header checks), beyond what
// tests/comm/ucx_p2p_transport_test.cpp covers. Found by tests/fuzz/intermediate_tensors_fuzz.cpp.
#include <doctest/doctest.h>

#include <cstring>

#include "comm/intermediate_tensors.hpp"
#include "kernels/error.hpp"

using namespace troupe;

TEST_CASE("a header with a zero dimension cannot hide dimensions whose strides overflow") {
  const std::string good = IntermediateTensors{{"h", Tensor::zeros({2, 3, 4}, DType::F32)}}.encode_header();
  const size_t first_dim = good.size() - 3 * sizeof(int64_t);
  auto with_dims = [&](int64_t a, int64_t b, int64_t c) {
    std::string h = good;
    const int64_t dims[] = {a, b, c};
    std::memcpy(h.data() + first_dim, dims, sizeof dims);
    return h;
  };
  CHECK(IntermediateTensors::decode_header(with_dims(0, 5, 6)).at(0).shape == Shape{0, 5, 6});
  CHECK(IntermediateTensors::allocate_from_header(with_dims(0, 5, 6)).at("h").describe() == "f32[0, 5, 6]");
  // Used to decode as 0 bytes, then overflow computing the strides of the tensor it allocated.
  CHECK_THROWS_WITH_AS(IntermediateTensors::decode_header(with_dims(0, 1ll << 50, 1ll << 58)),
                       "intermediate tensor 'h' has a dimension of 1125899906842624: refused (at most 17179869184 "
                       "bytes per message)",
                       Error);
  CHECK_THROWS_WITH_AS(IntermediateTensors::allocate_from_header(with_dims(1ll << 20, 0, 1ll << 20)),
                       doctest::Contains("refused"), Error);
}
