// libFuzzer target: bytes as an IntermediateTensors wire header (what the previous pipeline stage
// sends before the tensors' bytes). Decoding must either throw troupe::Error or give entries of
// known dtypes whose byte counts sum to at most the 16 GiB bound without wrapping; a header that
// asks for little memory is then allocated (allocate_from_header, reuse_or_allocate) and must
// re-encode to the same bytes. Built and run by scripts/fuzz.sh.
#include <cstdint>
#include <string>

#include "comm/intermediate_tensors.hpp"
#include "kernels/error.hpp"

namespace {
constexpr uint64_t kBound = uint64_t(16) << 30;    // comm/intermediate_tensors.cpp's kMaxAllocationBytes
constexpr uint64_t kAllocate = uint64_t(1) << 20;  // headers asking for more are only decoded here
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string header(reinterpret_cast<const char*>(data), size);
  std::vector<troupe::IntermediateTensors::HeaderEntry> entries;
  try {
    entries = troupe::IntermediateTensors::decode_header(header);
  } catch (const troupe::Error&) {
    return 0;  // a clear error is the expected outcome for malformed headers
  }
  uint64_t total = 0;
  for (const auto& e : entries) {
    uint64_t bytes = troupe::dtype_size(e.dtype);
    for (int64_t d : e.shape) {
      if (d < 0 || __builtin_mul_overflow(bytes, uint64_t(d), &bytes)) __builtin_trap();
    }
    if (__builtin_add_overflow(total, bytes, &total) || total > kBound) __builtin_trap();
  }
  if (total > kAllocate) return 0;
  try {
    troupe::IntermediateTensors tensors = troupe::IntermediateTensors::allocate_from_header(header);
    if (tensors.size() != entries.size()) __builtin_trap();
    if (tensors.encode_header() != header) __builtin_trap();  // the round trip is exact
    troupe::IntermediateTensors again = troupe::IntermediateTensors::reuse_or_allocate(header, std::move(tensors));
    if (again.encode_header() != header) __builtin_trap();
  } catch (const troupe::Error&) {
    __builtin_trap();  // a header that decoded must allocate
  }
  return 0;
}
