// Tensor: shape, dtype and device over contiguous storage. Views share storage and cover a
// contiguous window of it (a unit's parameters are views into its flat buffer), so every
// tensor is row-major contiguous and kernels take plain pointers.
#pragma once
#include <cstdint>
#include <memory>
#include <type_traits>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"

namespace zt {

using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);

class Storage {
 public:
  Storage(size_t nbytes, MemTag tag, Device device);               // owning
  Storage(void* external, size_t nbytes, Device device);           // borrowed (e.g. mmap)
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  MemTag tag() const { return tag_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  MemTag tag_ = MemTag::other;
  Device device_;
  bool owned_ = true;
};

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::i32; }

class Tensor {
 public:
  Tensor() = default;

  static Tensor empty(const Shape& shape, DType dtype, MemTag tag = MemTag::other,
                      Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype, MemTag tag = MemTag::other,
                      Device device = Device::cpu());
  // Non-owning tensor over memory the caller keeps alive (memory-mapped files).
  static Tensor wrap(void* data, const Shape& shape, DType dtype, Device device = Device::cpu());

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(i < 0 ? i + ndim() : i); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device() : Device::cpu(); }
  MemTag tag() const { return storage_ ? storage_->tag() : MemTag::other; }
  std::string shape_str() const { return zt::shape_str(shape_); }

  void* raw() const {
    return static_cast<char*>(storage_->data()) + offset_ * static_cast<int64_t>(dtype_size(dtype_));
  }
  // Typed pointer; T must match the dtype (uint16_t for bf16 and f16).
  template <typename T> T* data() const {
    if constexpr (std::is_same_v<T, uint16_t>) {
      ZT_CHECK(dtype_ == DType::bf16 || dtype_ == DType::f16, "tensor is {}", dtype_name(dtype_));
    } else {
      ZT_CHECK(dtype_ == dtype_of<T>(), "tensor is {}", dtype_name(dtype_));
    }
    return static_cast<T*>(raw());
  }

  // A window of numel(shape) elements starting `offset` elements into this tensor.
  Tensor view(int64_t offset, const Shape& shape) const;
  Tensor reshape(const Shape& shape) const;  // same elements, new shape
  Tensor flatten() const { return reshape({numel_}); }
  Tensor slice(int64_t begin, int64_t end) const;  // rows [begin, end) along dim 0

  Tensor clone(MemTag tag) const;  // same device
  // A copy on `device` (host <-> device copies go through the device's compute stream; a copy
  // to the host waits for it).
  Tensor to(Device device, MemTag tag) const;
  void copy_from(const Tensor& src);  // same numel and dtype, any devices
  void zero_();

 private:
  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;  // elements from the storage start
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::f32;
};

}  // namespace zt
