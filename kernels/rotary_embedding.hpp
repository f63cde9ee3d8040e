#pragma once
// Rotary position embedding in the rotate-half (Hugging Face / GPT-NeoX) convention, with the
// `rope_scaling` types "llama3" and "linear". Frequencies are computed in f32 as PyTorch does, so
// positions far into the context agree with the reference implementations.
#include <cstdint>
#include <vector>

#include "kernels/tensor.hpp"

namespace troupe {

struct RopeScaling {
  enum class Type { None, Linear, Llama3 } type = Type::None;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int64_t original_max_position_embeddings = 8192;
};

class RotaryEmbedding {
 public:
  RotaryEmbedding() = default;
  RotaryEmbedding(int64_t rotary_dim, float theta, const RopeScaling& scaling);

  // Rotates each head of q [T, Hq * D] and k [T, Hk * D] in place at positions[t].
  void apply(Tensor& q, Tensor& k, const std::vector<int32_t>& positions) const;
  const std::vector<float>& inv_freq() const { return inv_freq_; }

 private:
  void rotate(float* head, const float* cos, const float* sin) const;
  int64_t dim_ = 0;
  std::vector<float> inv_freq_;
};

}  // namespace troupe
