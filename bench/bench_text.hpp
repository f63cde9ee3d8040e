#pragma once
// Deterministic mixed text for tokenizer benchmarks: English prose, code, numbers, CJK, accented
// Latin, Cyrillic/Greek and emoji, the same bytes on every machine (no downloads, no std::
// distributions, whose output differs between standard libraries).
#include <cstddef>
#include <string>

namespace troupe::cli {

std::string generate_bench_text(size_t bytes, unsigned seed = 2026);

}  // namespace troupe::cli
