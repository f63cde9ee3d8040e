#include "tests/test_paths.hpp"

#include <cstdio>
#include <cstdlib>

namespace troupe::test {

std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("TROUPE_SHARED_DIR"); env && *env) return env;
  return TROUPE_SHARED_DIR;
}

std::optional<std::filesystem::path> shared_path(const std::string& relative) {
  auto p = shared_dir() / relative;
  if (std::filesystem::exists(p)) return p;
  std::printf("SKIP: %s is absent (set TROUPE_SHARED_DIR or place shared/ beside the checkout)\n", p.string().c_str());
  return std::nullopt;
}

std::filesystem::path binary_dir() { return std::filesystem::path(TROUPE_BINARY_DIR) / "bin"; }

}  // namespace troupe::test
