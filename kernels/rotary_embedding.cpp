#include "kernels/rotary_embedding.hpp"

#include <cmath>
#include <numbers>

#include "kernels/error.hpp"

namespace troupe {

RotaryEmbedding::RotaryEmbedding(int64_t rotary_dim, float theta, const RopeScaling& scaling) : dim_(rotary_dim) {
  if (rotary_dim <= 0 || rotary_dim % 2) fail("rotary dimension {} must be positive and even", rotary_dim);
  for (int64_t i = 0; i < rotary_dim / 2; ++i) {
    float exponent = float(2 * i) / float(rotary_dim);
    float freq = 1.0f / std::pow(theta, exponent);
    switch (scaling.type) {
      case RopeScaling::Type::None:
        break;
      case RopeScaling::Type::Linear:
        freq /= scaling.factor;
        break;
      case RopeScaling::Type::Llama3: {
        float old_len = float(scaling.original_max_position_embeddings);
        float low_wavelen = old_len / scaling.low_freq_factor;
        float high_wavelen = old_len / scaling.high_freq_factor;
        float wavelen = 2.0f * std::numbers::pi_v<float> / freq;
        if (wavelen > low_wavelen) {
          freq /= scaling.factor;
        } else if (wavelen >= high_wavelen) {
          float smooth =
              (old_len / wavelen - scaling.low_freq_factor) / (scaling.high_freq_factor - scaling.low_freq_factor);
          freq = (1 - smooth) * freq / scaling.factor + smooth * freq;
        }
        break;
      }
    }
    inv_freq_.push_back(freq);
  }
}

void RotaryEmbedding::rotate(float* head, const float* cos, const float* sin) const {
  const int64_t half = dim_ / 2;
  for (int64_t i = 0; i < half; ++i) {
    float x1 = head[i], x2 = head[i + half];
    head[i] = x1 * cos[i] - x2 * sin[i];
    head[i + half] = x2 * cos[i] + x1 * sin[i];
  }
}

void RotaryEmbedding::apply(Tensor& q, Tensor& k, const std::vector<int32_t>& positions) const {
  const int64_t T = q.size(0);
  if (k.size(0) != T || int64_t(positions.size()) != T)
    fail("rope: q {} k {} and {} positions disagree on the token count", q.describe(), k.describe(), positions.size());
  if (q.size(1) % dim_ || k.size(1) % dim_)
    fail("rope: q {} / k {} are not whole heads of {}", q.describe(), k.describe(), dim_);
  const int64_t half = dim_ / 2;
  std::vector<float> cos(static_cast<size_t>(half)), sin(static_cast<size_t>(half));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      float angle = float(positions[size_t(t)]) * inv_freq_[size_t(i)];
      cos[size_t(i)] = std::cos(angle);
      sin[size_t(i)] = std::sin(angle);
    }
    for (Tensor* x : {&q, &k}) {
      float* row = x->data<float>() + t * x->strides()[0];
      for (int64_t h = 0; h < x->size(1) / dim_; ++h) rotate(row + h * dim_, cos.data(), sin.data());
    }
  }
}

}  // namespace troupe
