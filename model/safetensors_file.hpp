#pragma once
// SafetensorsFile: one .safetensors file, memory-mapped; tensors are zero-copy views into the map.
// Everything is validated on open: the 8-byte header length, the JSON header, each entry's dtype,
// shape and data_offsets (inside the data section, dtype x shape = byte length, no overlaps).
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "kernels/tensor.hpp"

namespace troupe {

struct TensorEntry {
  DType dtype;
  Shape shape;
  size_t begin = 0, end = 0;  // byte offsets in the data section
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  const std::map<std::string, TensorEntry>& entries() const { return entries_; }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  // A view into the mapped file (kept alive by the view).
  Tensor tensor(const std::string& name) const;

 private:
  std::filesystem::path path_;
  std::shared_ptr<void> mapping_;  // the whole file
  const char* data_ = nullptr;     // start of the data section
  size_t data_bytes_ = 0;
  std::map<std::string, TensorEntry> entries_;
};

// The validation SafetensorsFile runs on open, over a whole file's bytes (8-byte header length,
// JSON header, data section): its entries, and where its data section starts. Throws
// troupe::Error naming `file` and what is wrong.
struct SafetensorsLayout {
  std::map<std::string, TensorEntry> entries;
  size_t data_begin = 0, data_bytes = 0;  // the data section: bytes [data_begin, data_begin + data_bytes)
};
SafetensorsLayout parse_safetensors(std::string_view file_bytes, const std::string& file);

// Writes tensors (contiguous, CPU) as a safetensors file, in name order.
void write_safetensors(const std::filesystem::path& path, const std::map<std::string, Tensor>& tensors);

}  // namespace troupe
