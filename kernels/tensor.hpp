#pragma once
// Tensor: a typed, shaped, strided view onto storage that is either owned (64-byte aligned heap
// memory, or device memory later) or borrowed (a view into an mmapped weight file kept alive by its
// owner). Copying a Tensor copies the view, not the bytes; clone() copies the bytes.
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "kernels/dtype.hpp"

namespace troupe {

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  static Device cpu() { return {}; }
  static Device cuda(int index) { return {DeviceType::CUDA, index}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool operator==(const Device&) const = default;
  std::string str() const;
};

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& shape);

// Bytes and who keeps them alive.
struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device;
  std::shared_ptr<void> owner;  // frees (or unmaps) the bytes when the last view goes
};

class Tensor {
 public:
  Tensor() = default;

  // Uninitialised, contiguous, 64-byte aligned.
  static Tensor empty(const Shape& shape, DType dtype, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype, Device device = Device::cpu());
  // A contiguous view of memory owned by someone else; keep_alive holds it (may be null if the
  // caller guarantees the lifetime).
  static Tensor borrow(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> keep_alive,
                       Device device = Device::cpu());
  static Tensor from_floats(const std::vector<float>& values, const Shape& shape);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device : Device::cpu(); }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t dim() const { return int64_t(shape_.size()); }
  int64_t size(int64_t axis) const;
  int64_t numel() const;
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype_); }
  bool is_contiguous() const;
  bool owns_memory() const;  // false for borrowed views (mmapped weights)

  void* raw() const { return static_cast<char*>(storage_->data) + offset_; }
  template <typename T>
  T* data() const {
    return static_cast<T*>(raw());
  }

  // Views (no copy).
  Tensor view(const Shape& shape) const;                         // contiguous only; -1 infers one dim
  Tensor slice(int64_t axis, int64_t start, int64_t end) const;  // [start, end) along axis
  Tensor row(int64_t index) const { return slice(0, index, index + 1).squeeze0(); }
  Tensor squeeze0() const;

  // Copies.
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;       // converts f32/bf16/f16 (copy even when dtype is the same)
  void copy_from(const Tensor& src);  // same shape; converts dtype when both are float types

  std::vector<float> to_floats() const;  // any float dtype, any strides
  std::string describe() const;          // "f32[2, 64]"

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;
  DType dtype_ = DType::F32;
  Shape shape_;
  Shape strides_;  // in elements
};

Shape contiguous_strides(const Shape& shape);

// Stacks 2-D tensors of the same width and dtype along rows into one new contiguous tensor
// (merged QKV and gate/up projections are built this way).
Tensor concat_rows(const std::vector<Tensor>& parts);

}  // namespace troupe
