#pragma once
// Where tests find ../shared (models, tokenizers) and the built binaries, and how a test case that
// cannot run says so.
//
// A case that cannot run calls skip_case(reason) (or TROUPE_REQUIRE_SHARED) and returns. Each doctest
// case is its own CTest test, and CTest reports a case that printed "TROUPE_TEST_SKIPPED" as Skipped,
// never as passed; the suite's own summary (tests/test_main.cpp) lists the reasons too. Data from
// ../shared is required when CI=true or TROUPE_REQUIRE_SHARED=1: then a missing path fails the case
// and names the path.
#include <filesystem>
#include <optional>
#include <string>

namespace troupe::test {

// The shared folder: $TROUPE_SHARED_DIR, else ../shared beside the checkout.
std::filesystem::path shared_dir();

// True when missing shared data must fail rather than skip (CI=true or TROUPE_REQUIRE_SHARED=1).
bool shared_data_required();

// shared_dir()/relative when it exists. Otherwise: fails the current case naming the path when
// shared_data_required(), else skips it (skip_case) and returns nothing.
std::optional<std::filesystem::path> shared_path(const std::string& relative);

// Marks the current test case skipped with `reason` (the caller returns from the case right after):
// prints the CTest skip marker and adds it to the list the suite prints at the end (test_main.cpp).
void skip_case(const std::string& reason);

// The build's bin/ folder (the troupe CLI and helper executables live there).
std::filesystem::path binary_dir();

}  // namespace troupe::test

// Binds `var` to shared_dir()/relative, or skips (or, under CI, fails) the current case.
#define TROUPE_REQUIRE_SHARED(var, relative)              \
  auto var##_opt = ::troupe::test::shared_path(relative); \
  if (!var##_opt) return;                                 \
  const std::filesystem::path var = *var##_opt
