// The doctest main of every suite: runs the cases, then lists the ones that skipped and why.
// `--cpu=avx2|scalar` caps the kernels' CPU dispatch (sets TROUPE_CPU) so CTest can run one suite
// on each fallback.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tests/test_paths.hpp"

namespace troupe::test {
namespace {

std::string current_case;

// Remembers which case is running, so a skip can name it.
struct CaseNameListener : doctest::IReporter {
  explicit CaseNameListener(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData& data) override { current_case = data.m_name; }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("troupe_case_name", 1, CaseNameListener);

struct SkippedCase {
  std::string name, reason;
};
std::vector<SkippedCase> skipped;  // filled from the test thread, listed after the run

}  // namespace

void skip_case(const std::string& reason) {
  std::printf("TROUPE_TEST_SKIPPED: %s: %s\n", current_case.c_str(), reason.c_str());
  std::fflush(stdout);
  skipped.push_back({current_case, reason});
}

}  // namespace troupe::test

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--cpu=", 6) == 0) setenv("TROUPE_CPU", argv[i] + 6, 1);
  doctest::Context context(argc, argv);
  const int rc = context.run();
  const auto& skipped = troupe::test::skipped;
  if (!skipped.empty()) {
    std::printf("%zu test case(s) SKIPPED:\n", skipped.size());
    for (const auto& s : skipped) std::printf("  SKIPPED %s: %s\n", s.name.c_str(), s.reason.c_str());
  }
  return rc;
}
