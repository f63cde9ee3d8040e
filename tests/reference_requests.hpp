#pragma once
// Greedy generation requests for reference cases: each case's prompt, as many tokens as it has
// greedy ids (sched types, so header-only: troupe_test_main does not link troupe_sched).
#include <vector>

#include "sched/batch_generator.hpp"
#include "tests/reference_cases.hpp"

namespace troupe::test {

inline std::vector<GenerationRequest> reference_requests(const std::vector<ReferenceCase>& cases) {
  std::vector<GenerationRequest> requests;
  for (const auto& c : cases) {
    GenerationRequest r;
    r.prompt_ids = c.prompt_ids;
    r.max_tokens = int64_t(c.greedy_ids.size());
    requests.push_back(r);
  }
  return requests;
}

}  // namespace troupe::test
