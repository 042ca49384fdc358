// Argument checks shared by the kernel API: invariants on tensors the model builds, so a
// failure is a bug (ZT_CHECK), not bad user input.
#pragma once
#include <initializer_list>

#include "core/cpu/bf16_elem.h"
#include "core/cuda/ops.h"
#include "core/kernels.h"
#include "core/tensor.h"
#ifdef ZT_WITH_CUDA
#include "core/cuda/runtime.h"
#endif

namespace zt::detail {

// ---- device dispatch ------------------------------------------------------------------------
// A kernel runs where its first tensor lives. The device branch of each kernel sits under
// `if constexpr (kWithCuda)`, so a build without CUDA references no core/cuda/ symbol.
#ifdef ZT_WITH_CUDA
inline constexpr bool kWithCuda = true;
#else
inline constexpr bool kWithCuda = false;
#endif

// True when `first` is on a CUDA device (made current). Without a CUDA build a device tensor
// is an error naming the kernel.
inline bool on_cuda(const Tensor& first, const char* kernel) {
  if (!first.defined() || first.device().is_cpu()) return false;
#ifdef ZT_WITH_CUDA
  cuda::set_device(first.device());
  return true;
#else
  fail("{}: a tensor on {}, but zerotrain was built without CUDA", kernel, first.device().str());
#endif
}

inline void check_on(const Tensor& t, const Device& device, const char* what) {
  ZT_CHECK(t.defined(), "{} is undefined", what);
  ZT_CHECK(t.device() == device, "{} is on {}, the kernel runs on {}", what, t.device().str(), device.str());
}
inline void check_f32_on(const Tensor& t, const Device& device, const char* what) {
  check_on(t, device, what);
  ZT_CHECK(t.dtype() == DType::f32, "{} must be f32, is {}", what, dtype_name(t.dtype()));
}
inline void check_i32_on(const Tensor& t, const Device& device, const char* what) {
  check_on(t, device, what);
  ZT_CHECK(t.dtype() == DType::i32, "{} must be i32, is {}", what, dtype_name(t.dtype()));
}
// f32, bf16 or f16: what the device kernels load and store (cuda::Elem).
inline void check_float_on(const Tensor& t, const Device& device, const char* what) {
  check_on(t, device, what);
  ZT_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::bf16 || t.dtype() == DType::f16,
           "{} must be f32, bf16 or f16, is {}", what, dtype_name(t.dtype()));
}
inline cuda::Elem elem_of(const Tensor& t) {
  return t.dtype() == DType::bf16 ? cuda::Elem::bf16 : t.dtype() == DType::f16 ? cuda::Elem::f16 : cuda::Elem::f32;
}
inline float* f32_or_null(const Tensor* t) { return t ? t->data<float>() : nullptr; }
// For checking a few tensors in one loop (optional ones as null).
using TensorList = std::initializer_list<const Tensor*>;

// ---- CPU checks -----------------------------------------------------------------------------

inline void check_f32_cpu(const Tensor& t, const char* what) {
  ZT_CHECK(t.defined(), "{} is undefined", what);
  ZT_CHECK(t.dtype() == DType::f32, "{} must be f32, is {}", what, dtype_name(t.dtype()));
  ZT_CHECK(t.device().is_cpu(), "{} is on {}; only the CPU backend is built", what, t.device().str());
}

inline void check_i32_cpu(const Tensor& t, const char* what) {
  ZT_CHECK(t.defined() && t.dtype() == DType::i32 && t.device().is_cpu(), "{} must be i32 on cpu", what);
}

// Rows and columns of a tensor read as 2-D with the last dim as columns.
inline int64_t cols(const Tensor& t) { return t.ndim() == 0 ? 1 : t.dim(-1); }
inline int64_t rows(const Tensor& t) { return t.numel() / std::max<int64_t>(cols(t), 1); }

inline void check_same_numel(const Tensor& a, const Tensor& b, const char* what) {
  ZT_CHECK(a.numel() == b.numel(), "{}: {} vs {}", what, a.shape_str(), b.shape_str());
}

inline void check_float_cpu(const Tensor& t, const char* what) {
  ZT_CHECK(t.defined() && t.device().is_cpu(), "{} must be a CPU tensor", what);
  ZT_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::bf16 || t.dtype() == DType::f16,
           "{} must be f32, bf16 or f16, is {}", what, dtype_name(t.dtype()));
}

// A bf16 tensor's storage for the CPU kernels that read and write bf16 directly.
inline const cpu::Bf16* bf16_data(const Tensor& t) { return reinterpret_cast<const cpu::Bf16*>(t.data<uint16_t>()); }
inline cpu::Bf16* bf16_data(Tensor& t) { return reinterpret_cast<cpu::Bf16*>(t.data<uint16_t>()); }

// Kernels compute in f32; mixed precision stores activations in bf16 or f16. An input in
// those is widened into an f32 workspace copy (exact); an f32 input is used as is.
class F32Input {
 public:
  F32Input(const Tensor& in, const char* what) {
    check_float_cpu(in, what);
    if (in.dtype() == DType::f32) {
      f32_ = in;
    } else {
      f32_ = Tensor::empty(in.shape(), DType::f32, MemTag::workspace);
      convert(f32_, in);
    }
  }
  const float* data() const { return f32_.data<float>(); }

 private:
  Tensor f32_;
};

// The output of a kernel that computes in f32. An f32 out is written directly; a bf16 or f16
// one through an f32 workspace, rounded to nearest even as store() writes it. in_place: the
// kernel also reads out (its current values are widened into the workspace first).
class F32Output {
 public:
  F32Output(Tensor& out, const char* what, bool in_place = false) : out_(out) {
    check_float_cpu(out, what);
    if (out.dtype() == DType::f32) {
      f32_ = out;
    } else {
      f32_ = Tensor::empty(out.shape(), DType::f32, MemTag::workspace);
      if (in_place) convert(f32_, out);
    }
  }
  float* data() { return f32_.data<float>(); }
  void store() {
    if (f32_.raw() != out_.raw()) convert(out_, f32_);
  }

 private:
  Tensor& out_;
  Tensor f32_;
};

}  // namespace zt::detail
