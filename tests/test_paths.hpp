#pragma once
// Where tests find ../shared (models, tokenizers) and the built binaries.
#include <filesystem>
#include <optional>
#include <string>

namespace troupe::test {

// The shared folder: $TROUPE_SHARED_DIR, else ../shared beside the checkout.
std::filesystem::path shared_dir();

// shared_dir()/relative when it exists; otherwise prints a clear skip message and returns nothing.
std::optional<std::filesystem::path> shared_path(const std::string& relative);

// The build's bin/ folder (the troupe CLI and helper executables live there).
std::filesystem::path binary_dir();

}  // namespace troupe::test

// Skips the current doctest case with a message when a shared file is absent.
#define TROUPE_REQUIRE_SHARED(var, relative)              \
  auto var##_opt = ::troupe::test::shared_path(relative); \
  if (!var##_opt) return;                                 \
  const std::filesystem::path var = *var##_opt
