#pragma once
// Comparing secrets (the cluster secret a node presents, an API key a client sends) without
// leaking, through the time taken, how much of a guess was right; reading a secret from a file
// only when nobody but its owner can read it; unguessable run nonces.
#include <cstdint>
#include <filesystem>
#include <string>

namespace troupe {

// True when `given` equals `expected`; takes time that depends only on expected's length.
inline bool same_secret(const std::string& given, const std::string& expected) {
  unsigned diff = given.size() != expected.size();
  for (size_t i = 0; i < expected.size(); ++i)
    diff |= unsigned(i < given.size() ? given[i] : 0) ^ unsigned(expected[i]);
  return diff == 0;
}

// The secret in `path` (trailing whitespace and newlines dropped). Throws troupe::Error, naming
// `where`, when the file is missing, not a regular file, empty, or readable or writable by group or
// others (as ssh refuses such a key: chmod 600 it).
std::string read_secret_file(const std::filesystem::path& path, const std::string& where);

// 64 bits from the operating system's random source (std::random_device): run ids, shm names.
uint64_t random_nonce();

}  // namespace troupe
