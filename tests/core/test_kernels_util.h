// Helpers shared by the tests/core/test_kernels_*.cpp suites: element access, comparisons
// against f64 references, bitwise equality and gradient-accumulation checks.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/kernels.h"
#include "core/tensor.h"
#include "tests/support/errors.h"
#include "tests/support/gradcheck.h"

namespace zt::testing {

inline float* f32(const Tensor& t) { return t.data<float>(); }

inline Tensor zeros_like(const Tensor& t) { return Tensor::zeros(t.shape(), t.dtype()); }
inline Tensor copy_of(const Tensor& t) { return t.clone(MemTag::other); }

// |got - want| <= atol + rtol * |want| for every element; reports the first few misses.
inline void expect_matches(const Tensor& got, const std::vector<double>& want, double rtol,
                           double atol, const std::string& what) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size())) << what;
  int misses = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double g = f32(got)[i];
    if (!(std::fabs(g - want[i]) <= atol + rtol * std::fabs(want[i])) && ++misses <= 5)
      ADD_FAILURE() << what << "[" << i << "]: got " << g << ", want " << want[i];
  }
  EXPECT_EQ(misses, 0) << what;
}

inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// After a second identical backward call, grad must equal twice its value after the first
// (each call adds the same contribution). `once` is a copy taken after the first call.
inline void expect_doubled(const Tensor& grad, const Tensor& once, const std::string& what) {
  ASSERT_EQ(grad.numel(), once.numel());
  double max_abs = 0;
  int misses = 0;
  for (int64_t i = 0; i < grad.numel(); ++i) {
    const double want = 2.0 * f32(once)[i];
    max_abs = std::max(max_abs, std::fabs(want));
    if (!(std::fabs(f32(grad)[i] - want) <= 1e-5 * std::fabs(want) + 1e-6) && ++misses <= 5)
      ADD_FAILURE() << what << "[" << i << "]: " << f32(grad)[i] << " after two calls, "
                    << f32(once)[i] << " after one";
  }
  EXPECT_EQ(misses, 0) << what << " does not accumulate";
  EXPECT_GT(max_abs, 1e-3) << what << " is all zero: the accumulation check proves nothing";
}

// Probe every element (not a sample) when the tensor is small.
inline GradCheckOptions all_elements(const Tensor& t, double step = 1e-3, double rtol = 2e-2,
                                     double atol = 2e-3) {
  return {step, rtol, atol, static_cast<int>(t.numel())};
}

}  // namespace zt::testing
