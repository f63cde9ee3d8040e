#include "model/gguf_file.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>

#include "kernels/error.hpp"
#include "model/mapped_file.hpp"

namespace troupe {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr uint64_t kMaxKeys = 1 << 20;
constexpr uint64_t kMaxTensors = 1 << 20;
constexpr uint64_t kMaxKeyBytes = 1 << 16;
constexpr uint64_t kMaxNameBytes = 1 << 10;
constexpr uint64_t kMaxStringBytes = uint64_t(1) << 32;  // a metadata string (chat templates run to kilobytes)
constexpr uint64_t kMaxAlignment = 1 << 16;
constexpr int64_t kMaxDim = int64_t(1) << 40;
constexpr int64_t kMaxValues = int64_t(1) << 50;

bool valid_type(uint32_t t) { return t <= uint32_t(GgufType::F64); }

// Sequential little-endian reads over the file's bytes; every read is bounds-checked.
class Reader {
 public:
  Reader(std::string_view bytes, const std::string& file) : bytes_(bytes), file_(file) {}

  uint64_t at() const { return at_; }
  uint64_t left() const { return bytes_.size() - at_; }

  template <class T>
  T read(std::string_view what) {
    if (left() < sizeof(T)) fail("{}: the file ends inside {} (at byte {})", file_, what, at_);
    T v;
    std::memcpy(&v, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }

  std::string read_string(std::string_view what, uint64_t limit) {
    const auto n = read<uint64_t>(what);
    if (n > limit) fail("{}: {} is {} bytes long (at most {})", file_, what, n, limit);
    if (n > left()) fail("{}: {} of {} bytes runs past the end of the file (at byte {})", file_, what, n, at_);
    std::string s(bytes_.data() + at_, n);
    at_ += n;
    return s;
  }

  GgufValue::Scalar read_scalar(GgufType type, const std::string& what) {
    switch (type) {
      case GgufType::U8:
        return uint64_t(read<uint8_t>(what));
      case GgufType::I8:
        return int64_t(read<int8_t>(what));
      case GgufType::U16:
        return uint64_t(read<uint16_t>(what));
      case GgufType::I16:
        return int64_t(read<int16_t>(what));
      case GgufType::U32:
        return uint64_t(read<uint32_t>(what));
      case GgufType::I32:
        return int64_t(read<int32_t>(what));
      case GgufType::F32:
        return double(read<float>(what));
      case GgufType::Bool: {
        const auto b = read<uint8_t>(what);
        if (b > 1) fail("{}: {} is a bool of value {} (0 or 1)", file_, what, b);
        return b == 1;
      }
      case GgufType::String:
        return read_string(what, kMaxStringBytes);
      case GgufType::U64:
        return read<uint64_t>(what);
      case GgufType::I64:
        return read<int64_t>(what);
      case GgufType::F64:
        return read<double>(what);
      case GgufType::Array:
        break;
    }
    fail("{}: {} has no scalar type", file_, what);
  }

  void skip_to(uint64_t offset, std::string_view what) {
    if (offset > bytes_.size())
      fail("{}: {} starts at byte {}, past the end of the file ({} bytes)", file_, what, offset, bytes_.size());
    at_ = offset;
  }

 private:
  std::string_view bytes_;
  const std::string& file_;
  uint64_t at_ = 0;
};

// The smallest encoding of one element of `type`, to bound an array's count by the bytes left.
uint64_t min_element_bytes(GgufType type) {
  switch (type) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::Bool:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    default:
      return 8;  // 64-bit numbers, and a string's length
  }
}

[[noreturn]] void wrong_kind(std::string_view what, const char* wanted, const GgufValue& v) {
  fail("GGUF key {}: expected {}, found {}{}", what, wanted, v.is_array() ? "an array of " : "",
       gguf_type_name(v.is_array() ? v.element_type() : v.type()));
}

int64_t scalar_int(const GgufValue::Scalar& s, std::string_view what, const GgufValue& v) {
  if (const auto* u = std::get_if<uint64_t>(&s)) {
    if (*u > uint64_t(std::numeric_limits<int64_t>::max())) fail("GGUF key {}: {} is too large", what, *u);
    return int64_t(*u);
  }
  if (const auto* i = std::get_if<int64_t>(&s)) return *i;
  wrong_kind(what, "an integer", v);
}

double scalar_float(const GgufValue::Scalar& s, std::string_view what, const GgufValue& v) {
  if (const auto* d = std::get_if<double>(&s)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&s)) return double(*u);
  if (const auto* i = std::get_if<int64_t>(&s)) return double(*i);
  wrong_kind(what, "a number", v);
}

void write_scalar(std::string& out, GgufType type, const GgufValue::Scalar& s) {
  auto put = [&out](const auto& v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); };
  auto as_u = [&] {
    return std::holds_alternative<uint64_t>(s) ? std::get<uint64_t>(s) : uint64_t(std::get<int64_t>(s));
  };
  auto as_d = [&] { return std::get<double>(s); };
  switch (type) {
    case GgufType::U8:
      return put(uint8_t(as_u()));
    case GgufType::I8:
      return put(int8_t(as_u()));
    case GgufType::U16:
      return put(uint16_t(as_u()));
    case GgufType::I16:
      return put(int16_t(as_u()));
    case GgufType::U32:
      return put(uint32_t(as_u()));
    case GgufType::I32:
      return put(int32_t(as_u()));
    case GgufType::F32:
      return put(float(as_d()));
    case GgufType::Bool:
      return put(uint8_t(std::get<bool>(s) ? 1 : 0));
    case GgufType::String: {
      const auto& str = std::get<std::string>(s);
      put(uint64_t(str.size()));
      out += str;
      return;
    }
    case GgufType::U64:
      return put(uint64_t(as_u()));
    case GgufType::I64:
      return put(int64_t(as_u()));
    case GgufType::F64:
      return put(as_d());
    case GgufType::Array:
      break;
  }
  fail("write_gguf: a nested array");
}

}  // namespace

const char* gguf_type_name(GgufType type) {
  static const char* const kNames[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                       "bool", "string", "array", "u64", "i64", "f64"};
  return valid_type(uint32_t(type)) ? kNames[uint32_t(type)] : "unknown type";
}

GgufValue GgufValue::array(GgufType element_type, std::vector<Scalar> elements) {
  GgufValue v;
  v.type_ = GgufType::Array;
  v.element_type_ = element_type;
  v.elements_ = std::move(elements);
  return v;
}

int64_t GgufValue::as_int(std::string_view what) const {
  if (is_array()) wrong_kind(what, "an integer", *this);
  return scalar_int(scalar_, what, *this);
}

double GgufValue::as_float(std::string_view what) const {
  if (is_array()) wrong_kind(what, "a number", *this);
  return scalar_float(scalar_, what, *this);
}

bool GgufValue::as_bool(std::string_view what) const {
  if (is_array() || type_ != GgufType::Bool) wrong_kind(what, "a bool", *this);
  return std::get<bool>(scalar_);
}

const std::string& GgufValue::as_string(std::string_view what) const {
  if (is_array() || type_ != GgufType::String) wrong_kind(what, "a string", *this);
  return std::get<std::string>(scalar_);
}

std::vector<std::string> GgufValue::strings(std::string_view what) const {
  if (!is_array() || element_type_ != GgufType::String) wrong_kind(what, "an array of strings", *this);
  std::vector<std::string> out;
  out.reserve(elements_.size());
  for (const auto& e : elements_) out.push_back(std::get<std::string>(e));
  return out;
}

std::vector<int64_t> GgufValue::ints(std::string_view what) const {
  if (!is_array()) wrong_kind(what, "an array of integers", *this);
  std::vector<int64_t> out;
  out.reserve(elements_.size());
  for (const auto& e : elements_) out.push_back(scalar_int(e, what, *this));
  return out;
}

std::vector<float> GgufValue::floats(std::string_view what) const {
  if (!is_array()) wrong_kind(what, "an array of numbers", *this);
  std::vector<float> out;
  out.reserve(elements_.size());
  for (const auto& e : elements_) out.push_back(float(scalar_float(e, what, *this)));
  return out;
}

GgufLayout parse_gguf(std::string_view file_bytes, const std::string& file) {
  Reader r(file_bytes, file);
  GgufLayout layout;
  if (r.read<uint32_t>("the magic") != kMagic) fail("{}: not a GGUF file (it does not start with \"GGUF\")", file);
  layout.version = r.read<uint32_t>("the version");
  if (layout.version == 1) fail("{}: GGUF version 1 (before August 2023) is not supported; convert it again", file);
  if (layout.version != 2 && layout.version != 3)
    fail("{}: GGUF version {} is not supported (2 or 3; a big-endian file reads as a huge number)", file,
         layout.version);
  const auto n_tensors = r.read<uint64_t>("the tensor count");
  const auto n_keys = r.read<uint64_t>("the metadata count");
  if (n_tensors > kMaxTensors) fail("{}: {} tensors (at most {})", file, n_tensors, kMaxTensors);
  if (n_keys > kMaxKeys) fail("{}: {} metadata keys (at most {})", file, n_keys, kMaxKeys);

  std::map<std::string, size_t, std::less<>> seen_keys;
  for (uint64_t k = 0; k < n_keys; ++k) {
    std::string key = r.read_string(fmt::format("metadata key {}", k), kMaxKeyBytes);
    if (key.empty()) fail("{}: metadata key {} is empty", file, k);
    if (seen_keys.count(key)) fail("{}: metadata key '{}' appears twice", file, key);
    const auto type = r.read<uint32_t>(key);
    if (!valid_type(type)) fail("{}: metadata key '{}' has value type {} (0..12)", file, key, type);
    GgufValue value;
    if (GgufType(type) == GgufType::Array) {
      const auto element = r.read<uint32_t>(key + "'s element type");
      if (!valid_type(element)) fail("{}: metadata key '{}' is an array of type {} (0..12)", file, key, element);
      if (GgufType(element) == GgufType::Array) fail("{}: metadata key '{}' is an array of arrays", file, key);
      const auto count = r.read<uint64_t>(key + "'s length");
      if (count > r.left() / min_element_bytes(GgufType(element)))
        fail("{}: metadata key '{}' claims {} elements, more than the file holds", file, key, count);
      std::vector<GgufValue::Scalar> elements;
      elements.reserve(count);
      for (uint64_t i = 0; i < count; ++i) elements.push_back(r.read_scalar(GgufType(element), key));
      value = GgufValue::array(GgufType(element), std::move(elements));
    } else {
      value = GgufValue(GgufType(type), r.read_scalar(GgufType(type), key));
    }
    seen_keys.emplace(key, k);
    layout.metadata.emplace_back(std::move(key), std::move(value));
  }
  if (auto it = seen_keys.find("general.alignment"); it != seen_keys.end()) {
    const auto& v = layout.metadata[it->second].second;
    if (v.is_array() || v.type() != GgufType::U32) fail("{}: general.alignment must be a u32", file);
    const int64_t a = v.as_int("general.alignment");
    if (a < 1 || a > int64_t(kMaxAlignment) || (a & (a - 1)) != 0)
      fail("{}: general.alignment {} is not a power of two up to {}", file, a, kMaxAlignment);
    layout.alignment = uint64_t(a);
  }

  std::map<std::string, size_t, std::less<>> seen_names;
  for (uint64_t t = 0; t < n_tensors; ++t) {
    GgufTensorInfo info;
    info.name = r.read_string(fmt::format("tensor {}'s name", t), kMaxNameBytes);
    if (info.name.empty()) fail("{}: tensor {} has an empty name", file, t);
    if (seen_names.count(info.name)) fail("{}: tensor '{}' appears twice", file, info.name);
    const auto n_dims = r.read<uint32_t>(info.name);
    if (n_dims < 1 || n_dims > 4) fail("{}: tensor '{}' has {} dimensions (1..4)", file, info.name, n_dims);
    info.values = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const auto dim = r.read<uint64_t>(info.name);
      if (dim < 1 || dim > uint64_t(kMaxDim))
        fail("{}: tensor '{}' dimension {} is {} (1..2^40)", file, info.name, d, dim);
      if (info.values > kMaxValues / int64_t(dim)) fail("{}: tensor '{}' has too many values", file, info.name);
      info.dims.push_back(int64_t(dim));
      info.values *= int64_t(dim);
    }
    const auto type_number = r.read<uint32_t>(info.name);
    const auto type = ggml_type_from_number(type_number);
    if (!type)
      fail("{}: tensor '{}' has type {}, which troupe does not read (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)", file,
           info.name, ggml_type_name(type_number));
    info.type = *type;
    if (info.dims[0] % ggml_block_values(info.type) != 0)
      fail("{}: tensor '{}' rows of {} values are not whole {} blocks of {}", file, info.name, info.dims[0],
           ggml_type_name(type_number), ggml_block_values(info.type));
    info.bytes = info.values / ggml_block_values(info.type) * ggml_block_bytes(info.type);
    info.offset = r.read<uint64_t>(info.name);
    if (info.offset % layout.alignment != 0)
      fail("{}: tensor '{}' offset {} is not a multiple of the alignment {}", file, info.name, info.offset,
           layout.alignment);
    seen_names.emplace(info.name, t);
    layout.tensors.push_back(std::move(info));
  }
  const uint64_t data_begin = (r.at() + layout.alignment - 1) / layout.alignment * layout.alignment;
  r.skip_to(n_tensors ? data_begin : std::min<uint64_t>(data_begin, file_bytes.size()), "the data section");
  layout.data_begin = r.at();
  const uint64_t data_bytes = file_bytes.size() - layout.data_begin;

  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& t : layout.tensors) {
    if (t.offset > data_bytes || uint64_t(t.bytes) > data_bytes - t.offset)
      fail("{}: tensor '{}' ({} bytes at offset {}) runs past the end of the data section ({} bytes)", file, t.name,
           t.bytes, t.offset, data_bytes);
    ranges.emplace_back(t.offset, t.offset + uint64_t(t.bytes));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second)
      fail("{}: two tensors' data overlap at offset {}", file, ranges[i].first);
  return layout;
}

GgufFile::GgufFile(const std::filesystem::path& path) : path_(path) {
  MappedFile mapped = map_file_read_only(path, "GGUF");
  layout_ = parse_gguf(mapped.bytes, path.string());  // a short file ends inside a named field
  mapping_ = std::move(mapped.owner);
  data_ = mapped.bytes.data();
  for (size_t i = 0; i < layout_.metadata.size(); ++i) key_index_.emplace(layout_.metadata[i].first, i);
  for (size_t i = 0; i < layout_.tensors.size(); ++i) tensor_index_.emplace(layout_.tensors[i].name, i);
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = key_index_.find(key);
  return it == key_index_.end() ? nullptr : &layout_.metadata[it->second].second;
}

const GgufValue& GgufFile::get(std::string_view key) const {
  if (const auto* v = find(key)) return *v;
  fail("{}: metadata key {} is missing", path_.string(), key);
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &layout_.tensors[it->second];
}

void write_gguf(const std::filesystem::path& path, const std::vector<std::pair<std::string, GgufValue>>& metadata,
                const std::vector<GgufTensorToWrite>& tensors) {
  uint64_t alignment = 32;
  for (const auto& [key, value] : metadata)
    if (key == "general.alignment") alignment = uint64_t(value.as_int(key));
  std::string out;
  auto put = [&out](const auto& v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); };
  auto put_string = [&](const std::string& s) {
    put(uint64_t(s.size()));
    out += s;
  };
  put(kMagic);
  put(uint32_t(3));
  put(uint64_t(tensors.size()));
  put(uint64_t(metadata.size()));
  for (const auto& [key, value] : metadata) {
    put_string(key);
    put(uint32_t(value.type()));
    if (value.is_array()) {
      put(uint32_t(value.element_type()));
      put(uint64_t(value.size()));
      for (const auto& e : value.elements()) write_scalar(out, value.element_type(), e);
    } else {
      write_scalar(out, value.type(), value.scalar());
    }
  }
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const auto& t : tensors) {
    int64_t values = 1;
    for (auto d : t.dims) values *= d;
    if (int64_t(t.bytes.size()) != values / ggml_block_values(t.type) * ggml_block_bytes(t.type))
      fail("write_gguf: tensor '{}' has {} bytes, not what {} values of {} take", t.name, t.bytes.size(), values,
           ggml_type_name(uint32_t(t.type)));
    put_string(t.name);
    put(uint32_t(t.dims.size()));
    for (auto d : t.dims) put(uint64_t(d));
    put(uint32_t(t.type));
    put(offset);
    offsets.push_back(offset);
    offset = (offset + t.bytes.size() + alignment - 1) / alignment * alignment;
  }
  out.resize((out.size() + alignment - 1) / alignment * alignment, '\0');
  const size_t data_begin = out.size();
  for (size_t i = 0; i < tensors.size(); ++i) {
    out.resize(data_begin + offsets[i], '\0');
    out += tensors[i].bytes;
  }
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) fail("cannot write {}", path.string());
  f.write(out.data(), std::streamsize(out.size()));
  if (!f) fail("cannot write {}", path.string());
}

}  // namespace troupe
