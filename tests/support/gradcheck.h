// Central finite-difference gradient checks shared by kernel, layer and model tests.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "core/rng.h"
#include "core/tensor.h"

namespace zt::testing {

struct GradCheckOptions {
  double step = 1e-2;   // finite-difference step h (inputs are O(1))
  double rtol = 2e-2;   // relative to max(|numeric|, |analytic|)
  double atol = 2e-3;
  int max_checks = 48;  // elements probed, spread over the tensor
};

// Random f32 tensor with entries ~ N(0, std), reproducible from `stream`.
inline Tensor random_tensor(const Shape& shape, uint64_t stream, float std = 1.0f) {
  Tensor t = Tensor::empty(shape, DType::f32);
  fill_normal(t, 0.f, std, 1234, stream);
  return t;
}

// Sum of out * proj in f64: a scalar loss whose gradient w.r.t. out is proj, so every output
// element matters with its own weight (a wrong transpose or permutation cannot cancel out).
inline double project(const Tensor& out, const Tensor& proj) {
  double s = 0;
  const float* o = out.data<float>();
  const float* p = proj.data<float>();
  for (int64_t i = 0; i < out.numel(); ++i) s += static_cast<double>(o[i]) * p[i];
  return s;
}

// Compares `analytic` (d loss / d x) with (loss(x + h e_i) - loss(x - h e_i)) / 2h at up to
// max_checks indices of x. `loss` must recompute from x's current contents.
inline void expect_grad_close(const std::function<double()>& loss, Tensor& x,
                              const Tensor& analytic, const std::string& label,
                              const GradCheckOptions& opt = {}) {
  ASSERT_EQ(x.numel(), analytic.numel()) << label;
  float* xs = x.data<float>();
  const float* g = analytic.data<float>();
  int64_t n = x.numel();
  int64_t stride = std::max<int64_t>(1, n / opt.max_checks);
  int failures = 0;
  double max_abs_grad = 0;
  for (int64_t i = 0; i < n; i += stride) {
    float saved = xs[i];
    xs[i] = saved + static_cast<float>(opt.step);
    double plus = loss();
    xs[i] = saved - static_cast<float>(opt.step);
    double minus = loss();
    xs[i] = saved;
    double numeric = (plus - minus) / (2 * opt.step);
    double a = g[i];
    max_abs_grad = std::max(max_abs_grad, std::fabs(numeric));
    double tol = opt.atol + opt.rtol * std::max(std::fabs(numeric), std::fabs(a));
    if (std::fabs(numeric - a) > tol && ++failures <= 5)
      ADD_FAILURE() << label << "[" << i << "]: analytic " << a << " vs numeric " << numeric;
  }
  EXPECT_EQ(failures, 0) << label << ": " << failures << " mismatches";
  // A check against an all-zero gradient proves nothing.
  EXPECT_GT(max_abs_grad, 10 * opt.atol) << label << ": gradient too small to be a real check";
}

}  // namespace zt::testing
