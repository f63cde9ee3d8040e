#include "tests/test_paths.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <string_view>

namespace troupe::test {

namespace {
bool env_is(const char* name, std::string_view value) {
  const char* v = std::getenv(name);
  return v && std::string_view(v) == value;
}
}  // namespace

std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("TROUPE_SHARED_DIR"); env && *env) return env;
  return TROUPE_SHARED_DIR;
}

bool shared_data_required() { return env_is("CI", "true") || env_is("TROUPE_REQUIRE_SHARED", "1"); }

std::optional<std::filesystem::path> shared_path(const std::string& relative) {
  auto p = (shared_dir() / relative).lexically_normal();
  if (std::filesystem::exists(p)) return p;
  const std::string reason = p.string() + " is absent (set TROUPE_SHARED_DIR or place shared/ beside the checkout)";
  if (shared_data_required()) FAIL("required shared data is missing: " << reason);
  skip_case(reason);
  return std::nullopt;
}

std::filesystem::path binary_dir() { return std::filesystem::path(TROUPE_BINARY_DIR) / "bin"; }

}  // namespace troupe::test
