#include "core/tensor.h"

#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/fault_injection.h"

#ifdef ZT_WITH_CUDA
#include "core/cuda/runtime.h"
#endif

namespace zt {

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s)
    ZT_CHECK(!__builtin_mul_overflow(n, d, &n), "shape {} has more elements than int64 holds", shape_str(s));
  return n;
}

std::string shape_str(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

std::optional<DType> parse_dtype(std::string_view name) {
  for (DType t : {DType::f32, DType::bf16, DType::f16, DType::i32, DType::f64})
    if (dtype_name(t) == name) return t;
  if (name == "fp32" || name == "float32") return DType::f32;
  if (name == "fp16" || name == "float16") return DType::f16;
  if (name == "bfloat16") return DType::bf16;
  return std::nullopt;
}

namespace {
CachingAllocator& allocator_of(const Device& device) {
  return device.is_cpu() ? CpuAllocator::instance() : device_allocator(device.index);
}
}  // namespace

Storage::Storage(size_t nbytes, MemTag tag, Device device) : nbytes_(nbytes), tag_(tag), device_(device) {
  data_ = allocator_of(device).allocate(nbytes, tag);
}

Storage::Storage(void* external, size_t nbytes, Device device)
    : data_(external), nbytes_(nbytes), device_(device), owned_(false) {}

Storage::~Storage() {
  if (owned_) allocator_of(device_).deallocate(data_, nbytes_, tag_);
}

Tensor Tensor::empty(const Shape& shape, DType dtype, MemTag tag, Device device) {
  Tensor t;
  t.shape_ = shape;
  t.numel_ = shape_numel(shape);
  ZT_CHECK(t.numel_ >= 0, "negative shape {}", zt::shape_str(shape));
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(t.nbytes(), tag, device);
  if (device.is_cpu() && t.nbytes() > 0 && poison_empty_tensors()) std::memset(t.raw(), 0xFF, t.nbytes());
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, MemTag tag, Device device) {
  Tensor t = empty(shape, dtype, tag, device);
  t.zero_();
  return t;
}

Tensor Tensor::wrap(void* data, const Shape& shape, DType dtype, Device device) {
  Tensor t;
  t.shape_ = shape;
  t.numel_ = shape_numel(shape);
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(data, t.nbytes(), device);
  return t;
}

Tensor Tensor::view(int64_t offset, const Shape& shape) const {
  int64_t n = shape_numel(shape);
  ZT_CHECK(offset >= 0 && offset + n <= numel_, "view [{}, {}) out of {} elements", offset,
           offset + n, numel_);
  Tensor t = *this;
  t.offset_ = offset_ + offset;
  t.shape_ = shape;
  t.numel_ = n;
  return t;
}

Tensor Tensor::reshape(const Shape& shape) const {
  ZT_CHECK(shape_numel(shape) == numel_, "reshape {} -> {}", shape_str(), zt::shape_str(shape));
  return view(0, shape);
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  ZT_CHECK(ndim() >= 1 && 0 <= begin && begin <= end && end <= shape_[0], "slice [{}, {}) of {}",
           begin, end, shape_str());
  int64_t row = numel_ / std::max<int64_t>(shape_[0], 1);
  Shape s = shape_;
  s[0] = end - begin;
  return view(begin * row, s);
}

Tensor Tensor::clone(MemTag tag) const {
  Tensor t = empty(shape_, dtype_, tag, device());
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(Device device, MemTag tag) const {
  Tensor t = empty(shape_, dtype_, tag, device);
  t.copy_from(*this);
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  ZT_CHECK(src.numel_ == numel_ && src.dtype_ == dtype_, "copy {} {} -> {} {}",
           dtype_name(src.dtype_), src.shape_str(), dtype_name(dtype_), shape_str());
  if (numel_ == 0) return;
  if (device().is_cpu() && src.device().is_cpu()) {
    std::memcpy(raw(), src.raw(), nbytes());
    return;
  }
#ifdef ZT_WITH_CUDA
  cuda::copy_bytes(raw(), device(), src.raw(), src.device(), nbytes());
#else
  fail("copy from {} to {}: zerotrain was built without CUDA", src.device().str(), device().str());
#endif
}

void Tensor::zero_() {
  if (numel_ == 0) return;
  if (device().is_cpu()) {
    std::memset(raw(), 0, nbytes());
    return;
  }
#ifdef ZT_WITH_CUDA
  cuda::zero_bytes(raw(), device(), nbytes());
#else
  fail("zero_ on {}: zerotrain was built without CUDA", device().str());
#endif
}

}  // namespace zt
