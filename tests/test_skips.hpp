#pragma once
// The suite's record of skipped test cases: record_skip() prints the CTest skip marker
// ("TROUPE_TEST_SKIPPED: <case>: <reason>") and remembers the case; tests/test_main.cpp prints the
// list after the run. Process-wide, filled from the test thread only.
#include <string>
#include <vector>

namespace troupe::test {

struct SkippedCase {
  std::string name, reason;
};

void record_skip(const std::string& reason);
const std::vector<SkippedCase>& skipped_cases();

}  // namespace troupe::test
