#include "comm/intermediate_tensors.hpp"

#include <algorithm>
#include <cstring>

#include "kernels/error.hpp"

namespace troupe {

namespace {

constexpr uint32_t kHeaderMagic = 0x49544e31;  // "ITN1"
// A peer's header may ask for at most this much memory (every tensor together): a pipeline
// stage's activations are far smaller; a larger ask is a corrupt or hostile header.
constexpr uint64_t kMaxAllocationBytes = uint64_t(16) << 30;

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

struct Reader {
  const std::string& in;
  size_t pos = 0;
  template <typename T>
  T get() {
    T v;
    std::memcpy(&v, bytes(sizeof v).data(), sizeof v);
    return v;
  }
  std::string bytes(size_t n) {
    if (pos + n > in.size()) fail("intermediate tensors header is truncated at byte {} of {}", pos, in.size());
    std::string s = in.substr(pos, n);
    pos += n;
    return s;
  }
};

}  // namespace

IntermediateTensors::IntermediateTensors(std::initializer_list<Entry> entries) {
  for (const auto& [name, tensor] : entries) set(name, tensor);
}

void IntermediateTensors::set(const std::string& name, Tensor tensor) {
  auto it = std::ranges::find(entries_, name, &Entry::first);
  if (it != entries_.end())
    it->second = std::move(tensor);
  else
    entries_.emplace_back(name, std::move(tensor));
}

bool IntermediateTensors::contains(const std::string& name) const {
  return std::ranges::find(entries_, name, &Entry::first) != entries_.end();
}

const Tensor& IntermediateTensors::at(const std::string& name) const {
  std::string keys;
  for (const auto& e : entries_) {
    if (e.first == name) return e.second;
    keys += (keys.empty() ? "" : ", ") + e.first;
  }
  fail("intermediate tensors have no '{}' (present: {})", name, keys.empty() ? "none" : keys);
}

std::string IntermediateTensors::encode_header() const {
  std::string out;
  put(out, kHeaderMagic);
  put(out, uint32_t(entries_.size()));
  for (const auto& [name, t] : entries_) {
    if (!t.is_contiguous()) fail("intermediate tensor '{}' {} must be contiguous to send", name, t.describe());
    put(out, uint32_t(name.size()));
    out += name;
    put(out, uint8_t(t.dtype()));
    put(out, uint8_t(t.dim()));
    for (int64_t d : t.shape()) put(out, d);
  }
  return out;
}

std::vector<IntermediateTensors::HeaderEntry> IntermediateTensors::decode_header(const std::string& header) {
  Reader r{header};
  if (r.get<uint32_t>() != kHeaderMagic) fail("intermediate tensors header has a bad magic number");
  uint32_t count = r.get<uint32_t>();
  std::vector<HeaderEntry> out;
  uint64_t total_bytes = 0;
  for (uint32_t i = 0; i < count; ++i) {
    std::string name = r.bytes(r.get<uint32_t>());
    auto dtype = DType(r.get<uint8_t>());
    if (uint8_t(dtype) > uint8_t(DType::U8))
      fail("intermediate tensor '{}' has unknown dtype code {}", name, int(dtype));
    Shape shape(r.get<uint8_t>());
    // extent: the bytes of the non-zero dimensions, so that [0, 2^62, 2^62] (no bytes, but strides
    // that overflow) is refused too.
    uint64_t bytes = dtype_size(dtype), extent = bytes;
    for (auto& d : shape) {
      d = r.get<int64_t>();
      if (d < 0 || (d > 0 && extent > kMaxAllocationBytes / uint64_t(d)))
        fail("intermediate tensor '{}' has a dimension of {}: refused (at most {} bytes per message)", name, d,
             kMaxAllocationBytes);
      if (d > 0) extent *= uint64_t(d);
      bytes *= uint64_t(d);
    }
    if ((total_bytes += bytes) > kMaxAllocationBytes)
      fail("intermediate tensors ask for more than {} bytes: refused", kMaxAllocationBytes);
    out.push_back({std::move(name), dtype, std::move(shape)});
  }
  if (r.pos != header.size()) fail("intermediate tensors header has {} trailing bytes", header.size() - r.pos);
  return out;
}

IntermediateTensors IntermediateTensors::allocate_from_header(const std::string& header) {
  IntermediateTensors out;
  for (auto& e : decode_header(header)) out.entries_.emplace_back(std::move(e.name), Tensor::empty(e.shape, e.dtype));
  return out;
}

IntermediateTensors IntermediateTensors::reuse_or_allocate(const std::string& header, IntermediateTensors reuse) {
  if (!reuse.empty() && reuse.encode_header() == header) return reuse;
  return allocate_from_header(header);
}

}  // namespace troupe
