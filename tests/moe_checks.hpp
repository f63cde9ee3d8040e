#pragma once
// Shared checks for the mixture-of-experts reference tests (single rank and every layout): greedy
// ids and the logits after each prompt against ../shared/models/<moe>/reference.json.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/error.hpp"
#include "sched/batch_generator.hpp"
#include "sched/kv_block_manager.hpp"
#include "tests/reference_cases.hpp"
#include "tests/reference_requests.hpp"

namespace troupe::test {

// The logits after `prompt`: one prefill step through the executor, logits of the last token.
inline std::vector<float> prompt_logits(ModelExecutor& executor, const std::vector<int32_t>& prompt) {
  KvBlockManager blocks(executor.num_kv_blocks(), executor.kv_block_size());
  if (!blocks.reserve(0, int64_t(prompt.size()))) fail("prompt of {} tokens does not fit the kv cache", prompt.size());
  ForwardBatch batch;
  batch.token_ids = prompt;
  batch.attention.block_size = executor.kv_block_size();
  batch.attention.block_tables.push_back(blocks.block_table(0));
  for (size_t p = 0; p < prompt.size(); ++p) {
    batch.attention.positions.push_back(int32_t(p));
    batch.attention.sequence_of_token.push_back(0);
  }
  batch.logit_rows = {int64_t(prompt.size()) - 1};
  return executor.execute(batch).to_floats();
}

// Greedy ids equal the reference for the first compare_first tokens of every case (all cases in
// one batch), and the logits after each prompt match within 1e-3 absolute.
inline void check_moe_reference(ModelExecutor& executor, const std::vector<ReferenceCase>& cases,
                                const std::string& label) {
  auto results = BatchGenerator(executor).run(reference_requests(cases));
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO(label, " case ", i);
    auto got = results[i].ids;
    got.resize(std::min(got.size(), cases[i].compare_first));
    CHECK(got == std::vector<int32_t>(cases[i].greedy_ids.begin(),
                                      cases[i].greedy_ids.begin() + int64_t(cases[i].compare_first)));
    REQUIRE(!cases[i].last_prompt_logits.empty());
    auto logits = prompt_logits(executor, cases[i].prompt_ids);
    REQUIRE(logits.size() == cases[i].last_prompt_logits.size());
    float worst = 0;
    for (size_t v = 0; v < logits.size(); ++v)
      worst = std::max(worst, std::abs(logits[v] - cases[i].last_prompt_logits[v]));
    INFO("largest logit difference ", worst);
    CHECK(worst <= 1e-3f);
  }
}

}  // namespace troupe::test
