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

// The output of a forward kernel that computes in f32. An f32 out is written directly; a bf16
// or f16 one (mixed-precision activations that only feed matmuls) through an f32 workspace,
// rounded to nearest even as store() writes it.
class F32Output {
 public:
  F32Output(Tensor& out, const char* what) : out_(out) {
    ZT_CHECK(out.defined() && out.device().is_cpu(), "{} must be a CPU tensor", what);
    ZT_CHECK(out.dtype() == DType::f32 || out.dtype() == DType::bf16 || out.dtype() == DType::f16,
             "{} must be f32, bf16 or f16, is {}", what, dtype_name(out.dtype()));
    f32_ = out.dtype() == DType::f32 ? out : Tensor::empty(out.shape(), DType::f32, MemTag::workspace);
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
