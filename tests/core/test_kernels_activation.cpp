// GELU (tanh approximation) and SwiGLU: forward against f64 formulas, backward against both
// the analytic f64 derivative and finite differences, accumulation, extremes, determinism.
#include "tests/core/test_kernels_util.h"

namespace zt {
namespace {

using namespace zt::testing;

constexpr int64_t N = 7, C = 12, F = 9;

double gelu_ref(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}
double gelu_grad_ref(double x) {
  const double k = std::sqrt(2 / M_PI), u = k * (x + 0.044715 * x * x * x), t = std::tanh(u);
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x);
}
double silu(double g) { return g / (1 + std::exp(-g)); }

TEST(KernelActivationCases, GeluForwardAndGradientMatchFormulaOverWideRange) {
  // Evenly spaced over [-12, 12] (tails, the knee, tiny values) in an odd shape.
  Tensor x = Tensor::empty({N, 2 * C + 1}, DType::f32);
  const int64_t n = x.numel();
  for (int64_t i = 0; i < n; ++i) f32(x)[i] = -12.f + 24.f * i / (n - 1);
  f32(x)[n / 2] = 1e-4f;
  Tensor y = Tensor::empty(x.shape(), DType::f32), g = random_tensor(x.shape(), 1);
  Tensor dx = random_tensor(x.shape(), 2), dx0 = copy_of(dx);
  gelu_forward(y, x);
  gelu_backward(dx, g, x);
  std::vector<double> ry(n), rdx(n);
  for (int64_t i = 0; i < n; ++i) {
    ry[i] = gelu_ref(f32(x)[i]);
    rdx[i] = f32(dx0)[i] + f32(g)[i] * gelu_grad_ref(f32(x)[i]);  // accumulates onto dx0
  }
  expect_matches(y, ry, 1e-5, 1e-6, "gelu");
  expect_matches(dx, rdx, 1e-5, 1e-5, "gelu backward");
}

TEST(KernelActivationCases, GeluBackwardMatchesFiniteDifferencesAndAccumulates) {
  Tensor x = random_tensor({N, C}, 3, 2.f), y = Tensor::empty({N, C}, DType::f32);
  Tensor proj = random_tensor({N, C}, 4), dx = Tensor::zeros({N, C}, DType::f32);
  gelu_backward(dx, proj, x);
  expect_grad_close([&] { gelu_forward(y, x); return project(y, proj); }, x, dx, "dinp",
                    all_elements(x));
  Tensor dx1 = copy_of(dx);
  gelu_backward(dx, proj, x);
  expect_doubled(dx, dx1, "dinp");
}

// GradWrite::overwrite writes exactly what a zeroed dinp accumulates, whatever dinp held,
// for f32 and bf16 inputs.
TEST(KernelActivationCases, OverwrittenDinpEqualsAZeroedAccumulation) {
  for (DType dt : {DType::f32, DType::bf16}) {
    Tensor x32 = random_tensor({N, 2 * C}, 5, 2.f), g2 = random_tensor({N, 2 * C}, 6), g1 = random_tensor({N, C}, 7);
    Tensor x = Tensor::empty(x32.shape(), dt);
    convert(x, x32);
    Tensor gelu_acc = Tensor::zeros({N, 2 * C}, DType::f32), swiglu_acc = Tensor::zeros({N, 2 * C}, DType::f32);
    gelu_backward(gelu_acc, g2, x);
    swiglu_backward(swiglu_acc, g1, x);
    Tensor gelu_dx = random_tensor({N, 2 * C}, 8), swiglu_dx = random_tensor({N, 2 * C}, 9);
    f32(gelu_dx)[3] = f32(swiglu_dx)[3] = std::nanf("");
    gelu_backward(gelu_dx, g2, x, GradWrite::overwrite);
    swiglu_backward(swiglu_dx, g1, x, GradWrite::overwrite);
    EXPECT_TRUE(bitwise_equal(gelu_dx, gelu_acc)) << dtype_name(dt) << " gelu";
    EXPECT_TRUE(bitwise_equal(swiglu_dx, swiglu_acc)) << dtype_name(dt) << " swiglu";
  }
}

TEST(KernelActivationCases, GeluStaysFiniteAtExtremes) {
  Tensor x = Tensor::empty({6}, DType::f32);
  const float vals[6] = {-1e4f, -100.f, -30.f, 30.f, 100.f, 1e4f};
  std::copy(vals, vals + 6, f32(x));
  Tensor y = Tensor::empty({6}, DType::f32), dx = Tensor::zeros({6}, DType::f32),
         g = Tensor::empty({6}, DType::f32);
  fill(g, 1.f);
  gelu_forward(y, x);
  gelu_backward(dx, g, x);
  for (int i = 0; i < 6; ++i) {
    EXPECT_TRUE(std::isfinite(f32(y)[i]) && std::isfinite(f32(dx)[i])) << vals[i];
    EXPECT_NEAR(f32(y)[i], vals[i] > 0 ? vals[i] : 0.f, 1e-3f * std::fabs(vals[i])) << vals[i];
    EXPECT_NEAR(f32(dx)[i], vals[i] > 0 ? 1.f : 0.f, 1e-6f) << vals[i];
  }
}

TEST(KernelActivationCases, SwigluForwardMatchesReference) {
  Tensor x = random_tensor({N, 2 * F}, 5, 2.f), y = Tensor::empty({N, F}, DType::f32);
  swiglu_forward(y, x);
  std::vector<double> ref(N * F);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < F; ++i)
      ref[n * F + i] = silu(f32(x)[n * 2 * F + i]) * f32(x)[n * 2 * F + F + i];
  expect_matches(y, ref, 1e-5, 1e-6, "swiglu");
}

TEST(KernelActivationCases, SwigluBackwardMatchesFiniteDifferencesForGateAndUp) {
  Tensor x = random_tensor({N, 2 * F}, 6, 2.f), y = Tensor::empty({N, F}, DType::f32);
  Tensor proj = random_tensor({N, F}, 7), dx = Tensor::zeros({N, 2 * F}, DType::f32);
  swiglu_backward(dx, proj, x);
  // Every element, so both the gate half and the up half of each row are probed.
  expect_grad_close([&] { swiglu_forward(y, x); return project(y, proj); }, x, dx, "dinp",
                    all_elements(x));
  // And against the analytic f64 derivative.
  std::vector<double> ref(N * 2 * F);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < F; ++i) {
      const double g = f32(x)[n * 2 * F + i], u = f32(x)[n * 2 * F + F + i];
      const double s = 1 / (1 + std::exp(-g)), d = f32(proj)[n * F + i];
      ref[n * 2 * F + i] = d * u * (s + g * s * (1 - s));
      ref[n * 2 * F + F + i] = d * g * s;
    }
  expect_matches(dx, ref, 1e-5, 1e-6, "swiglu backward");
  Tensor dx1 = copy_of(dx);
  swiglu_backward(dx, proj, x);
  expect_doubled(dx, dx1, "dinp");
}

TEST(KernelActivationCases, SwigluStaysFiniteAtExtremes) {
  Tensor x = Tensor::empty({1, 4}, DType::f32);  // gates -1e4, 1e4; up 2, 3
  f32(x)[0] = -1e4f, f32(x)[1] = 1e4f, f32(x)[2] = 2.f, f32(x)[3] = 3.f;
  Tensor y = Tensor::empty({1, 2}, DType::f32), g = Tensor::empty({1, 2}, DType::f32),
         dx = Tensor::zeros({1, 4}, DType::f32);
  fill(g, 1.f);
  swiglu_forward(y, x);
  swiglu_backward(dx, g, x);
  EXPECT_NEAR(f32(y)[0], 0.f, 1e-6f);
  EXPECT_NEAR(f32(y)[1], 3e4f, 1.f);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(std::isfinite(f32(dx)[i])) << i;
}

TEST(KernelActivationCases, BitwiseDeterministicAndShapeChecked) {
  Tensor x = random_tensor({257, 2 * 3072 / 4}, 8), g = random_tensor({257, 3072 / 4}, 9);
  Tensor a = Tensor::zeros(x.shape(), DType::f32), b = Tensor::zeros(x.shape(), DType::f32);
  gelu_backward(a, x, x);
  gelu_backward(b, x, x);
  EXPECT_TRUE(bitwise_equal(a, b));
  Tensor s1 = Tensor::zeros(x.shape(), DType::f32), s2 = Tensor::zeros(x.shape(), DType::f32);
  swiglu_backward(s1, g, x);
  swiglu_backward(s2, g, x);
  EXPECT_TRUE(bitwise_equal(s1, s2));
  Tensor odd = random_tensor({3, 5}, 10), out = Tensor::empty({3, 2}, DType::f32);
  EXPECT_NE(error_of([&] { swiglu_forward(out, odd); }), "(no error)");
  Tensor short_out = Tensor::empty({4}, DType::f32);
  EXPECT_NE(error_of([&] { gelu_forward(short_out, odd); }), "(no error)");
}

}  // namespace
}  // namespace zt
