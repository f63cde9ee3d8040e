#pragma once
// Token sampling from logits: greedy (temperature 0), or temperature with top-k and top-p
// (nucleus) filtering, drawn from a per-request generator so a given seed always gives the same
// tokens.
#include <cstdint>
#include <random>

namespace troupe {

struct SamplingParams {
  float temperature = 0.0f;  // 0 = greedy
  float top_p = 1.0f;        // (0, 1]
  int top_k = 0;             // 0 = off
  uint64_t seed = 0;
  // Throws troupe::Error naming the bad field.
  void validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}
  int sample(const float* logits, int64_t vocab);

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
};

// Index of the largest logit (the lowest index on ties).
int argmax(const float* logits, int64_t n);

}  // namespace troupe
