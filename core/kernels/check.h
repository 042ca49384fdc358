// Argument checks shared by the kernel API: invariants on tensors the model builds, so a
// failure is a bug (ZT_CHECK), not bad user input.
#pragma once
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

}  // namespace zt::detail
