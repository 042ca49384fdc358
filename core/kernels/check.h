// Argument checks shared by the kernel API: invariants on tensors the model builds, so a
// failure is a bug (ZT_CHECK), not bad user input.
#pragma once
#include "core/kernels.h"
#include "core/tensor.h"

namespace zt::detail {

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
