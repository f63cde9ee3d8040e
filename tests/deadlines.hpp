#pragma once
// Deadlines of the waits in tests that drive real clusters. A deadline bounds a healthy run with a
// wide margin; sanitizer builds run the same work 2-20x slower (ThreadSanitizer instruments every
// load and store of the kernels), so their deadlines are scaled: a hang still fails in minutes.
#include <chrono>

namespace troupe::test {

#if defined(__SANITIZE_THREAD__)
inline constexpr int kDeadlineScale = 4;
#elif TROUPE_SANITIZED
inline constexpr int kDeadlineScale = 2;
#else
inline constexpr int kDeadlineScale = 1;
#endif

// `d` for this build: as given in Release, longer under the sanitizers.
template <class Rep, class Period>
constexpr std::chrono::milliseconds scaled(std::chrono::duration<Rep, Period> d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d) * kDeadlineScale;
}

}  // namespace troupe::test
