#pragma once
// troupe::Error: the one exception type for user-facing failures. Messages name the bad value and
// what was expected ("num_attention_heads (4) is not divisible by tensor_parallel_size (3)").
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace troupe {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws troupe::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace troupe
