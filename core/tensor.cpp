#include "core/tensor.h"

#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

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

Storage::Storage(size_t nbytes, MemTag tag, Device device) : nbytes_(nbytes), tag_(tag), device_(device) {
  ZT_CHECK(device.is_cpu(), "no allocator for {}", device.str());
  data_ = CpuAllocator::instance().allocate(nbytes, tag);
}

Storage::Storage(void* external, size_t nbytes, Device device)
    : data_(external), nbytes_(nbytes), device_(device), owned_(false) {}

Storage::~Storage() {
  if (owned_) CpuAllocator::instance().deallocate(data_, nbytes_, tag_);
}

Tensor Tensor::empty(const Shape& shape, DType dtype, MemTag tag, Device device) {
  Tensor t;
  t.shape_ = shape;
  t.numel_ = shape_numel(shape);
  ZT_CHECK(t.numel_ >= 0, "negative shape {}", zt::shape_str(shape));
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(t.nbytes(), tag, device);
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

void Tensor::copy_from(const Tensor& src) {
  ZT_CHECK(src.numel_ == numel_ && src.dtype_ == dtype_, "copy {} {} -> {} {}",
           dtype_name(src.dtype_), src.shape_str(), dtype_name(dtype_), shape_str());
  if (numel_ > 0) std::memcpy(raw(), src.raw(), nbytes());
}

void Tensor::zero_() {
  if (numel_ > 0) std::memset(raw(), 0, nbytes());
}

}  // namespace zt
