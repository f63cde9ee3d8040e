#include "kernels/sampling.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/error.hpp"

namespace troupe {

void SamplingParams::validate() const {
  if (!(temperature >= 0.0f) || !std::isfinite(temperature)) fail("temperature {} must be >= 0", temperature);
  if (!(top_p > 0.0f && top_p <= 1.0f)) fail("top_p {} must be in (0, 1]", top_p);
  if (top_k < 0) fail("top_k {} must be >= 0 (0 disables it)", top_k);
}

int argmax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return int(best);
}

namespace {

// SplitMix64's finaliser: a well-mixed 64-bit word from any input.
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

int Sampler::sample(const float* logits, int64_t vocab, int64_t position) const {
  if (params_.temperature == 0.0f) return argmax(logits, vocab);
  // Candidates sorted by logit (ties by index, so the order is deterministic).
  std::vector<int> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  size_t keep = size_t(vocab);
  if (params_.top_k > 0) keep = std::min<size_t>(keep, size_t(params_.top_k));
  auto by_logit = [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(keep), order.end(), by_logit);
  order.resize(keep);
  std::vector<double> probs(keep);
  double mx = logits[order[0]], sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += probs[i] = std::exp((double(logits[order[i]]) - mx) / params_.temperature);
  for (auto& p : probs) p /= sum;
  if (params_.top_p < 1.0f) {  // the smallest prefix whose mass reaches top_p
    double mass = 0;
    size_t n = 0;
    while (n < keep && mass < params_.top_p) mass += probs[n++];
    probs.resize(n);
    order.resize(n);
    for (auto& p : probs) p /= mass;
  }
  // 53 random bits in [0, 1), from (seed, position) alone.
  const uint64_t bits = mix64(mix64(params_.seed + 0x9e3779b97f4a7c15ull) ^ uint64_t(position));
  const double u = double(bits >> 11) * 0x1.0p-53;
  double acc = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    acc += probs[i];
    if (u < acc) return order[i];
  }
  return order.back();
}

}  // namespace troupe
