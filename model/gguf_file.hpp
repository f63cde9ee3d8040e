#pragma once
// GgufFile: one GGUF file (llama.cpp's checkpoint format, versions 2 and 3), memory-mapped:
// its metadata (typed key/value pairs: architecture, hyperparameters, tokenizer) and its tensor
// index, with zero-copy access to each tensor's bytes. write_gguf() writes one.
//
// Every field is validated on open, before anything is used (the file may come from anywhere):
// magic and version; counts bounded by what the file can hold; every string and array inside the
// file; keys and tensor names unique; value types known, arrays not nested; alignment a power of
// two; each tensor 1..4 dimensions of sizes >= 1 whose product does not overflow, a type troupe
// reads (others are refused by their ggml name), rows a whole number of blocks, offsets aligned,
// data inside the file and not overlapping. Errors are troupe::Error naming the file and the field.
//
// Lifetime: GgufFile owns the mapping; tensor_bytes() points into it and lives as long as the file.
// Thread safety: const after construction.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kernels/quant_blocks.hpp"
#include "kernels/tensor.hpp"

namespace troupe {

// GGUF's metadata value types (gguf.h numbering).
enum class GgufType : uint32_t { U8, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64 };
const char* gguf_type_name(GgufType type);

// One metadata value: a scalar, or an array of scalars of one type.
class GgufValue {
 public:
  using Scalar = std::variant<uint64_t, int64_t, double, bool, std::string>;

  GgufValue() = default;
  GgufValue(GgufType type, Scalar scalar) : type_(type), scalar_(std::move(scalar)) {}
  static GgufValue array(GgufType element_type, std::vector<Scalar> elements);

  // Convenience constructors for writers.
  static GgufValue u32(uint32_t v) { return {GgufType::U32, uint64_t(v)}; }
  static GgufValue i32(int32_t v) { return {GgufType::I32, int64_t(v)}; }
  static GgufValue f32(float v) { return {GgufType::F32, double(v)}; }
  static GgufValue boolean(bool v) { return {GgufType::Bool, v}; }
  static GgufValue string(std::string v) { return {GgufType::String, std::move(v)}; }

  GgufType type() const { return type_; }
  GgufType element_type() const { return element_type_; }  // arrays only
  bool is_array() const { return type_ == GgufType::Array; }
  size_t size() const { return elements_.size(); }  // arrays only

  // Typed reads; each throws troupe::Error (naming `what`) when the value has another kind or,
  // for integers, does not fit.
  int64_t as_int(std::string_view what) const;
  double as_float(std::string_view what) const;  // any number
  bool as_bool(std::string_view what) const;
  const std::string& as_string(std::string_view what) const;
  std::vector<std::string> strings(std::string_view what) const;  // an array of strings
  std::vector<int64_t> ints(std::string_view what) const;         // an array of integers
  std::vector<float> floats(std::string_view what) const;         // an array of numbers

  const Scalar& scalar() const { return scalar_; }
  const std::vector<Scalar>& elements() const { return elements_; }

 private:
  GgufType type_ = GgufType::U8;
  GgufType element_type_ = GgufType::U8;
  Scalar scalar_;
  std::vector<Scalar> elements_;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // ggml order: dims[0] is the row length (the fastest-moving index)
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;  // from the start of the data section
  int64_t values = 0;   // product of dims
  int64_t bytes = 0;

  // Row-major shape (dims reversed): a [rows, row_length] matrix for a 2-D tensor.
  Shape shape() const { return Shape(dims.rbegin(), dims.rend()); }
};

// What parse_gguf finds in a file's bytes.
struct GgufLayout {
  uint32_t version = 0;
  uint64_t alignment = 32;
  std::vector<std::pair<std::string, GgufValue>> metadata;  // in file order
  std::vector<GgufTensorInfo> tensors;                      // in file order
  uint64_t data_begin = 0;                                  // the data section's offset in the file
};
// The validation GgufFile runs on open, over a whole file's bytes. Throws troupe::Error naming `file`.
GgufLayout parse_gguf(std::string_view file_bytes, const std::string& file);

class GgufFile {
 public:
  explicit GgufFile(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  uint32_t version() const { return layout_.version; }
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return layout_.metadata; }
  const std::vector<GgufTensorInfo>& tensors() const { return layout_.tensors; }

  const GgufValue* find(std::string_view key) const;  // nullptr when absent
  // Throws naming the file and the key when absent.
  const GgufValue& get(std::string_view key) const;
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  const void* tensor_bytes(const GgufTensorInfo& info) const { return data_ + layout_.data_begin + info.offset; }

 private:
  std::filesystem::path path_;
  std::shared_ptr<void> mapping_;
  const char* data_ = nullptr;
  GgufLayout layout_;
  std::map<std::string, size_t, std::less<>> key_index_, tensor_index_;
};

// A tensor to write: its name, ggml dims (dims[0] = row length), type, and encoded bytes.
struct GgufTensorToWrite {
  std::string name;
  std::vector<int64_t> dims;
  GgmlType type = GgmlType::F32;
  std::string bytes;
};
// Writes a GGUF version 3 file (general.alignment 32 unless the metadata sets it).
void write_gguf(const std::filesystem::path& path, const std::vector<std::pair<std::string, GgufValue>>& metadata,
                const std::vector<GgufTensorToWrite>& tensors);

}  // namespace troupe
