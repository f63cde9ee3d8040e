#pragma once
// The last resort that bounds every exit path of a troupe process. Once a process has decided to
// end (refused join, shutdown, lost coordinator, SIGINT/SIGTERM), it arms the deadline and tears
// down as usual; if the teardown has not finished when the deadline passes (CAF can wait for ever on
// a detached actor that a remote peer still references, a rank may be blocked mid-load), the process
// logs what it was doing and ends with _exit(code). Arming is idempotent: the first call wins.
// Process-wide; the watchdog thread lives until the process ends.
#include <chrono>
#include <string>

namespace troupe {

void arm_exit_deadline(std::chrono::milliseconds grace, int exit_code, const std::string& what);

// The grace every troupe process gives its orderly teardown.
inline constexpr std::chrono::seconds kTeardownGrace{5};

}  // namespace troupe
