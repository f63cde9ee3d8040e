#pragma once
// Measures this machine's memory read bandwidth (bytes/s) with the current thread pool: the
// yardstick for memory-bound decode (the roofline is bandwidth / bytes of weights per token).
#include <cstdint>

namespace troupe {

double measure_read_bandwidth(int64_t buffer_bytes = int64_t(1) << 30, int repetitions = 5);

}  // namespace troupe
