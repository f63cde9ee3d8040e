#include "kernels/embedding.hpp"

#include <cstring>

#include "kernels/error.hpp"

namespace troupe {

namespace {
void copy_row(const Tensor& table, int64_t row, float* out) {
  const int64_t D = table.size(1);
  const char* base =
      static_cast<const char*>(table.raw()) + row * table.strides()[0] * int64_t(dtype_size(table.dtype()));
  switch (table.dtype()) {
    case DType::F32:
      std::memcpy(out, base, size_t(D) * 4);
      break;
    case DType::BF16:
      for (int64_t i = 0; i < D; ++i) out[i] = bf16_to_f32(reinterpret_cast<const uint16_t*>(base)[i]);
      break;
    case DType::F16:
      for (int64_t i = 0; i < D; ++i) out[i] = f16_to_f32(reinterpret_cast<const uint16_t*>(base)[i]);
      break;
    default:
      fail("embedding table must be a float type, got {}", table.describe());
  }
}
}  // namespace

Tensor embedding(const Tensor& table, const std::vector<int32_t>& ids) {
  const int64_t V = table.size(0), D = table.size(1);
  Tensor out = Tensor::empty({int64_t(ids.size()), D}, DType::F32);
  for (size_t t = 0; t < ids.size(); ++t) {
    if (ids[t] < 0 || ids[t] >= V) fail("token id {} is out of range for vocab_size {}", ids[t], V);
    copy_row(table, ids[t], out.data<float>() + int64_t(t) * D);
  }
  return out;
}

Tensor embedding_shard(const Tensor& table, const std::vector<int32_t>& ids, int64_t vocab_offset) {
  const int64_t V = table.size(0), D = table.size(1);
  Tensor out = Tensor::zeros({int64_t(ids.size()), D}, DType::F32);
  for (size_t t = 0; t < ids.size(); ++t) {
    int64_t local = int64_t(ids[t]) - vocab_offset;
    if (local >= 0 && local < V) copy_row(table, local, out.data<float>() + int64_t(t) * D);
  }
  return out;
}

}  // namespace troupe
