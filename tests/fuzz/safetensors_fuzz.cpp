// libFuzzer target: bytes as a .safetensors file, through the validation SafetensorsFile runs on
// open (parse_safetensors). It must either throw troupe::Error or return entries that lie inside
// the data section, whose byte spans are exactly dtype x shape (a Tensor view of each agrees), and
// which do not overlap. The first byte picks the form of the rest:
//   even: the whole file, as it is (the 8-byte header length is fuzzed too);
//   odd:  a 4-byte data-section size (little-endian, capped at 64 MiB) and then the JSON header:
//         the harness writes the header length itself and a data section of that size, so real
//         headers (the seeds) parse without their multi-megabyte data.
// Built and run by scripts/fuzz.sh.
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/error.hpp"
#include "kernels/tensor.hpp"
#include "model/safetensors_file.hpp"

namespace {

constexpr size_t kMaxDataBytes = size_t(64) << 20;
constexpr size_t kMaxInput = size_t(1) << 20;  // more than -max_len allows

// One mapping for the synthesised files: 8 + header + data, the data never written (zero pages).
char* scratch() {
  static char* buffer = [] {
    void* p = ::mmap(nullptr, 8 + kMaxInput + kMaxDataBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) __builtin_trap();
    return static_cast<char*>(p);
  }();
  return buffer;
}

void check(std::string_view file, const troupe::SafetensorsLayout& layout) {
  if (layout.data_begin + layout.data_bytes != file.size()) __builtin_trap();
  std::vector<std::pair<size_t, size_t>> spans;
  for (const auto& [name, e] : layout.entries) {
    if (e.begin > e.end || e.end > layout.data_bytes) __builtin_trap();
    const char* data = file.data() + layout.data_begin;
    troupe::Tensor view =
        troupe::Tensor::borrow(const_cast<char*>(data + e.begin), e.shape, e.dtype, std::shared_ptr<void>());
    if (view.nbytes() != e.end - e.begin) __builtin_trap();
    if (e.end > e.begin) {  // the first and last byte are readable (ASan checks the even form's copy)
      volatile char first = data[e.begin], last = data[e.end - 1];
      (void)first, (void)last;
    }
    spans.emplace_back(e.begin, e.end);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].first < spans[i - 1].second) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > kMaxInput) return 0;
  try {
    if (data[0] % 2 == 0) {
      const std::string file(reinterpret_cast<const char*>(data + 1), size - 1);  // exact size: ASan bounds
      check(file, troupe::parse_safetensors(file, "fuzz.safetensors"));
    } else {
      if (size < 5) return 0;
      uint32_t data_bytes = 0;
      std::memcpy(&data_bytes, data + 1, 4);
      const size_t data_size = std::min<size_t>(data_bytes, kMaxDataBytes);
      const uint64_t header_len = size - 5;
      char* buffer = scratch();
      std::memcpy(buffer, &header_len, 8);
      std::memcpy(buffer + 8, data + 5, header_len);
      const std::string_view file(buffer, 8 + header_len + data_size);
      check(file, troupe::parse_safetensors(file, "fuzz.safetensors"));
    }
  } catch (const troupe::Error&) {
    // A clear error is the expected outcome for malformed files.
  }
  return 0;
}
