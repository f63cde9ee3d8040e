#include "model/safetensors_file.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "kernels/error.hpp"
#include "model/mapped_file.hpp"

namespace troupe {

namespace {
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // as the reference implementation
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : path_(path) {
  MappedFile mapped = map_file_read_only(path, "safetensors");
  SafetensorsLayout layout = parse_safetensors(mapped.bytes, path.string());  // checks the size too
  mapping_ = std::move(mapped.owner);
  data_ = mapped.bytes.data() + layout.data_begin;
  data_bytes_ = layout.data_bytes;
  entries_ = std::move(layout.entries);
}

SafetensorsLayout parse_safetensors(std::string_view file_bytes, const std::string& file) {
  const size_t size = file_bytes.size();
  if (size < 8) fail("{}: file is {} bytes, too short for the 8-byte header length", file, size);
  const char* bytes = file_bytes.data();
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes, 8);  // little-endian on every supported host
  if (header_len > kMaxHeaderBytes || header_len > size - 8)
    fail("{}: header length {} runs past the end of the file ({} bytes)", file, header_len, size);
  SafetensorsLayout layout;
  layout.data_begin = 8 + header_len;
  layout.data_bytes = size - 8 - header_len;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes + 8, bytes + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range: a number overflows
    fail("{}: header is not valid JSON ({})", file, e.what());
  }
  if (!header.is_object()) fail("{}: header must be a JSON object", file);

  std::vector<std::pair<size_t, size_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") continue;
    const auto& e = it.value();
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      fail("{}: tensor '{}' needs dtype, shape and data_offsets", file, name);
    TensorEntry entry;
    try {
      entry.dtype = parse_dtype(e["dtype"].get<std::string>());
    } catch (const nlohmann::json::exception&) {
      fail("{}: tensor '{}' has a non-string dtype", file, name);
    } catch (const Error& err) {
      fail("{}: tensor '{}': {}", file, name, err.what());
    }
    const auto& shape = e["shape"];
    const auto& offsets = e["data_offsets"];
    if (!shape.is_array()) fail("{}: tensor '{}' shape must be a list", file, name);
    uint64_t count = 1, extent = 1;  // extent: the product of the non-zero dimensions (the strides)
    for (const auto& d : shape) {
      if (!d.is_number_unsigned()) fail("{}: tensor '{}' has a bad dimension {}", file, name, d.dump());
      uint64_t v = d.get<uint64_t>();
      // Zero dimensions included: [0, 2^62, 2^62] holds no element but its strides overflow.
      if (v != 0 && extent > (1ull << 62) / v) fail("{}: tensor '{}' shape overflows", file, name);
      if (v != 0) extent *= v;
      count *= v;
      entry.shape.push_back(int64_t(v));
    }
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
      fail("{}: tensor '{}' data_offsets must be [begin, end]", file, name);
    entry.begin = offsets[0].get<size_t>();
    entry.end = offsets[1].get<size_t>();
    if (entry.begin > entry.end || entry.end > layout.data_bytes)
      fail("{}: tensor '{}' data_offsets [{}, {}] lie outside the data section of {} bytes", file, name, entry.begin,
           entry.end, layout.data_bytes);
    if (count > UINT64_MAX / dtype_size(entry.dtype))  // the byte count below would wrap around
      fail("{}: tensor '{}' {} needs more bytes than 64 bits count", file, name, shape_str(entry.shape));
    const uint64_t expected = count * dtype_size(entry.dtype);
    if (entry.end - entry.begin != expected)
      fail("{}: tensor '{}' is {} {} = {} bytes but data_offsets span {} bytes", file, name, dtype_name(entry.dtype),
           shape_str(entry.shape), expected, entry.end - entry.begin);
    if (entry.begin % dtype_size(entry.dtype) != 0)
      fail("{}: tensor '{}' data offset {} is not aligned to its {}-byte elements", file, name, entry.begin,
           dtype_size(entry.dtype));
    ranges.emplace_back(entry.begin, entry.end);
    layout.entries.emplace(name, std::move(entry));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second)
      fail("{}: tensors overlap at byte offsets [{}, {}) and [{}, {})", file, ranges[i - 1].first, ranges[i - 1].second,
           ranges[i].first, ranges[i].second);
  return layout;
}

Tensor SafetensorsFile::tensor(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail("{}: no tensor named '{}'", path_.string(), name);
  const TensorEntry& e = it->second;
  return Tensor::borrow(const_cast<char*>(data_ + e.begin), e.shape, e.dtype, mapping_);
}

void write_safetensors(const std::filesystem::path& path, const std::map<std::string, Tensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (!t.is_contiguous()) fail("write_safetensors: tensor '{}' is not contiguous", name);
    static const std::map<DType, const char*> names = {{DType::F32, "F32"}, {DType::BF16, "BF16"}, {DType::F16, "F16"},
                                                       {DType::I32, "I32"}, {DType::I64, "I64"},   {DType::U8, "U8"}};
    header[name] = {
        {"dtype", names.at(t.dtype())}, {"shape", t.shape()}, {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data section 8-byte aligned
  std::ofstream out(path, std::ios::binary);
  if (!out) fail("cannot write {}", path.string());
  uint64_t len = text.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(text.data(), std::streamsize(text.size()));
  for (const auto& [name, t] : tensors) out.write(static_cast<const char*>(t.raw()), std::streamsize(t.nbytes()));
  if (!out) fail("short write to {}", path.string());
}

}  // namespace troupe
