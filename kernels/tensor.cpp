#include "kernels/tensor.hpp"

#include <cstdlib>
#include <cstring>

#include <fmt/ranges.h>

#include "kernels/error.hpp"

namespace troupe {

std::string Device::str() const { return type == DeviceType::CPU ? "cpu" : fmt::format("cuda:{}", index); }

std::string shape_str(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i];
  }
  return strides;
}

static int64_t count(const Shape& shape) {
  int64_t n = 1, extent = 1;  // extent: the product of the non-zero dimensions, the strides' bound
  for (auto d : shape) {
    if (d < 0) fail("tensor shape {} has a negative dimension", shape_str(shape));
    if (__builtin_mul_overflow(n, d, &n)) fail("tensor shape {} has more elements than int64 counts", shape_str(shape));
    if (d > 0 && __builtin_mul_overflow(extent, d, &extent))  // [0, 2^62, 2^62]: no elements, but strides overflow
      fail("tensor shape {} has dimensions whose product (its strides) int64 cannot count", shape_str(shape));
  }
  return n;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  if (!device.is_cpu()) fail("Tensor::empty on {} needs the CUDA allocator (kernels/cuda)", device.str());
  size_t bytes = 0;
  if (__builtin_mul_overflow(size_t(count(shape)), dtype_size(dtype), &bytes) || bytes > SIZE_MAX - 64)
    fail("a {} tensor of shape {} has more bytes than memory can address", dtype_name(dtype), shape_str(shape));
  size_t padded = std::max<size_t>(64, (bytes + 63) / 64 * 64);
  void* p = std::aligned_alloc(64, padded);
  if (!p)
    fail("out of memory allocating {} bytes for a {} tensor of shape {}", padded, dtype_name(dtype), shape_str(shape));
  return borrow(p, shape, dtype, std::shared_ptr<void>(p, std::free), device);  // owns p through the deleter
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  std::memset(t.raw(), 0, t.nbytes());
  return t;
}

Tensor Tensor::borrow(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> keep_alive, Device device) {
  Tensor t;
  t.storage_ =
      std::make_shared<Storage>(Storage{data, size_t(count(shape)) * dtype_size(dtype), device, std::move(keep_alive)});
  t.dtype_ = dtype;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  return t;
}

Tensor Tensor::from_floats(const std::vector<float>& values, const Shape& shape) {
  if (int64_t(values.size()) != count(shape))
    fail("from_floats: {} values do not fill shape {}", values.size(), shape_str(shape));
  Tensor t = empty(shape, DType::F32);
  std::memcpy(t.raw(), values.data(), values.size() * 4);
  return t;
}

int64_t Tensor::size(int64_t axis) const {
  if (axis < 0) axis += dim();
  if (axis < 0 || axis >= dim()) fail("axis {} out of range for tensor {}", axis, describe());
  return shape_[size_t(axis)];
}

int64_t Tensor::numel() const { return count(shape_); }

bool Tensor::is_contiguous() const { return strides_ == contiguous_strides(shape_) || numel() <= 1; }

bool Tensor::owns_memory() const { return storage_ && storage_->owner && storage_->owner.get() == storage_->data; }

Tensor Tensor::view(const Shape& shape) const {
  if (!is_contiguous()) fail("view of non-contiguous tensor {}", describe());
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (infer >= 0) fail("view {} has more than one -1", shape_str(shape));
      infer = int64_t(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel() % known) fail("cannot view {} as {}", describe(), shape_str(shape));
    s[size_t(infer)] = numel() / known;
  }
  if (count(s) != numel()) fail("cannot view {} as {}: element counts differ", describe(), shape_str(shape));
  Tensor t = *this;
  t.shape_ = s;
  t.strides_ = contiguous_strides(s);
  return t;
}

Tensor Tensor::slice(int64_t axis, int64_t start, int64_t end) const {
  if (axis < 0) axis += dim();
  if (axis < 0 || axis >= dim()) fail("slice axis {} out of range for {}", axis, describe());
  if (start < 0 || end > shape_[size_t(axis)] || start > end)
    fail("slice [{}, {}) out of range for axis {} of {}", start, end, axis, describe());
  Tensor t = *this;
  t.offset_ += size_t(start * strides_[size_t(axis)]) * dtype_size(dtype_);
  t.shape_[size_t(axis)] = end - start;
  return t;
}

Tensor Tensor::squeeze0() const {
  if (dim() == 0 || shape_[0] != 1) fail("squeeze0 of {}", describe());
  Tensor t = *this;
  t.shape_.erase(t.shape_.begin());
  t.strides_.erase(t.strides_.begin());
  return t;
}

// Visits every element offset (in elements) of a strided tensor in row-major order.
template <typename F>
static void for_each_offset(const Shape& shape, const Shape& strides, F&& f) {
  int64_t n = count(shape);
  if (n == 0) return;
  std::vector<int64_t> idx(shape.size(), 0);
  int64_t off = 0;
  for (int64_t i = 0; i < n; ++i) {
    f(i, off);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) {
        off += strides[d];
        break;
      }
      off -= strides[d] * (shape[d] - 1);
      idx[d] = 0;
    }
  }
}

static float load_float(const void* base, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::F32:
      return static_cast<const float*>(base)[i];
    case DType::BF16:
      return bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
    case DType::F16:
      return f16_to_f32(static_cast<const uint16_t*>(base)[i]);
    default:
      fail("dtype {} is not a float type", dtype_name(dtype));
  }
}

static void store_float(void* base, DType dtype, int64_t i, float v) {
  switch (dtype) {
    case DType::F32:
      static_cast<float*>(base)[i] = v;
      break;
    case DType::BF16:
      static_cast<uint16_t*>(base)[i] = f32_to_bf16(v);
      break;
    case DType::F16:
      static_cast<uint16_t*>(base)[i] = f32_to_f16(v);
      break;
    default:
      fail("dtype {} is not a float type", dtype_name(dtype));
  }
}

void Tensor::copy_from(const Tensor& src) {
  if (src.shape_ != shape_) fail("copy_from: shape {} into {}", src.describe(), describe());
  if (src.dtype_ == dtype_ && src.is_contiguous() && is_contiguous()) {
    std::memcpy(raw(), src.raw(), nbytes());
    return;
  }
  if (src.dtype_ == dtype_) {
    size_t es = dtype_size(dtype_);
    std::vector<int64_t> dst_offsets;
    dst_offsets.reserve(size_t(numel()));
    for_each_offset(shape_, strides_, [&](int64_t, int64_t off) { dst_offsets.push_back(off); });
    char* d = static_cast<char*>(raw());
    const char* s = static_cast<const char*>(src.raw());
    for_each_offset(src.shape_, src.strides_, [&](int64_t i, int64_t off) {
      std::memcpy(d + dst_offsets[size_t(i)] * int64_t(es), s + off * int64_t(es), es);
    });
    return;
  }
  if (!is_contiguous()) fail("copy_from with dtype conversion needs a contiguous destination, got {}", describe());
  void* d = raw();
  const void* s = src.raw();
  for_each_offset(src.shape_, src.strides_,
                  [&](int64_t i, int64_t off) { store_float(d, dtype_, i, load_float(s, src.dtype_, off)); });
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::clone() const { return to(dtype_); }

Tensor Tensor::to(DType dtype) const {
  Tensor t = empty(shape_, dtype, device());
  t.copy_from(*this);
  return t;
}

std::vector<float> Tensor::to_floats() const {
  std::vector<float> out(static_cast<size_t>(numel()));
  const void* s = raw();
  for_each_offset(shape_, strides_, [&](int64_t i, int64_t off) { out[size_t(i)] = load_float(s, dtype_, off); });
  return out;
}

std::string Tensor::describe() const { return std::string(dtype_name(dtype_)) + shape_str(shape_); }

Tensor concat_rows(const std::vector<Tensor>& parts) {
  int64_t rows = 0, cols = parts.at(0).size(1);
  for (const auto& p : parts) {
    if (p.size(1) != cols || p.dtype() != parts[0].dtype())
      fail("concat_rows: {} does not match {}", p.describe(), parts[0].describe());
    rows += p.size(0);
  }
  Tensor out = Tensor::empty({rows, cols}, parts[0].dtype());
  int64_t r = 0;
  for (const auto& p : parts) {
    out.slice(0, r, r + p.size(0)).copy_from(p);
    r += p.size(0);
  }
  return out;
}

}  // namespace troupe
