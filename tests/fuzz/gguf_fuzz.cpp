// libFuzzer target: bytes as a GGUF file, through the validation GgufFile runs on open
// (parse_gguf), then the checkpoint mapping's reads. parse_gguf must either throw troupe::Error or
// return tensors whose bytes lie inside the file, are exactly what their type and dims take, and do
// not overlap; every metadata value must read back through its typed accessor or throw. Seeds: the
// headers of ../shared/models/gguf/*.gguf (scripts/fuzz.sh). Built and run by scripts/fuzz.sh.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/error.hpp"
#include "kernels/quant_blocks.hpp"
#include "model/gguf_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string file(reinterpret_cast<const char*>(data), size);  // exact size: ASan bounds
  try {
    const troupe::GgufLayout layout = troupe::parse_gguf(file, "fuzz.gguf");
    if (layout.data_begin > file.size()) __builtin_trap();
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    for (const auto& t : layout.tensors) {
      const uint64_t begin = layout.data_begin + t.offset, end = begin + uint64_t(t.bytes);
      if (end > file.size() || end < begin) __builtin_trap();
      if (t.bytes != troupe::ggml_row_bytes(t.type, t.dims[0]) * (t.values / t.dims[0])) __builtin_trap();
      if (t.bytes > 0) {
        volatile char first = file[begin], last = file[end - 1];
        (void)first, (void)last;
      }
      spans.emplace_back(begin, end);
    }
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size(); ++i)
      if (spans[i].first < spans[i - 1].second) __builtin_trap();
    for (const auto& [key, value] : layout.metadata) {
      try {
        if (value.is_array()) {
          value.ints(key);
        } else {
          value.as_float(key);
        }
      } catch (const troupe::Error&) {
      }
    }
  } catch (const troupe::Error&) {
    // A clear error is the expected outcome for malformed files.
  }
  return 0;
}
