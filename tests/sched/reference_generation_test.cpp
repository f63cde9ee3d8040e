// Greedy generation reproduces ../shared/models/*/reference.json token for token, one request at
// a time and all requests batched together.
#include <doctest/doctest.h>

#include "sched/batch_generator.hpp"
#include "sched/local_model_executor.hpp"
#include "tests/reference_cases.hpp"
#include "tests/reference_requests.hpp"
#include "tests/test_paths.hpp"

using namespace troupe;

namespace {

void check_against_reference(const std::string& model) {
  TROUPE_REQUIRE_SHARED(dir, "models/" + model);
  auto cases = test::load_reference_cases(dir);
  REQUIRE(!cases.empty());
  LocalModelExecutor executor(dir);
  BatchGenerator generator(executor);
  auto requests = test::reference_requests(cases);
  for (size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(model);
    CAPTURE(i);
    auto result = generator.run({requests[i]});
    std::vector<int32_t> got(result[0].ids.begin(),
                             result[0].ids.begin() + std::min(result[0].ids.size(), cases[i].compare_first));
    std::vector<int32_t> want(cases[i].greedy_ids.begin(), cases[i].greedy_ids.begin() + cases[i].compare_first);
    CHECK(got == want);
  }
  auto batched = generator.run(requests);
  for (size_t i = 0; i < cases.size(); ++i) {
    auto single = generator.run({requests[i]});
    CAPTURE(i);
    CHECK(batched[i].ids == single[0].ids);
  }
}

}  // namespace

TEST_CASE("aidreams260K greedy ids equal the reference, alone and batched") { check_against_reference("aidreams260K"); }
TEST_CASE("gqa260K greedy ids equal the reference, alone and batched") { check_against_reference("gqa260K"); }
