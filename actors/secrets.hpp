#pragma once
// Comparing secrets (the cluster secret a node presents, an API key a client sends) without
// leaking, through the time taken, how much of a guess was right.
#include <string>

namespace troupe {

// True when `given` equals `expected`; takes time that depends only on expected's length.
inline bool same_secret(const std::string& given, const std::string& expected) {
  unsigned diff = given.size() != expected.size();
  for (size_t i = 0; i < expected.size(); ++i)
    diff |= unsigned(i < given.size() ? given[i] : 0) ^ unsigned(expected[i]);
  return diff == 0;
}

}  // namespace troupe
