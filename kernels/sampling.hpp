#pragma once
// Token sampling from logits: greedy (temperature 0), or temperature with top-k and top-p
// (nucleus) filtering. The random draw for a token is a function of the request's seed and the
// token's position only, never of what was drawn before: a given seed always gives the same tokens,
// and a sequence recomputed elsewhere (a restarted rank, another replica) continues exactly.
#include <cstdint>

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
  explicit Sampler(const SamplingParams& params) : params_(params) {}
  // The token after the one at `position` (the sequence's last token).
  int sample(const float* logits, int64_t vocab, int64_t position) const;

 private:
  SamplingParams params_;
};

// Index of the largest logit (the lowest index on ties).
int argmax(const float* logits, int64_t n);

}  // namespace troupe
