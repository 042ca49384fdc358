// LayerNorm and RMSNorm: forward and saved statistics against f64, accuracy at a large mean,
// finite-difference gradients for inp, weight and bias, accumulation and determinism.
#include "tests/core/test_kernels_util.h"

namespace zt {
namespace {

using namespace zt::testing;

constexpr int64_t N = 7, C = 12;
constexpr float kEps = 1e-5f;

struct NormRef {
  std::vector<double> out, mean, rstd;
};

NormRef norm_ref(const Tensor& x, const Tensor& w, const Tensor* b, bool rms, int64_t rows, int64_t cols) {
  NormRef r{std::vector<double>(rows * cols), std::vector<double>(rows), std::vector<double>(rows)};
  for (int64_t n = 0; n < rows; ++n) {
    const float* xr = f32(x) + n * cols;
    double m = 0, v = 0;
    for (int64_t c = 0; c < cols; ++c) m += xr[c];
    m = rms ? 0 : m / cols;
    for (int64_t c = 0; c < cols; ++c) v += (xr[c] - m) * (xr[c] - m);
    const double rs = 1 / std::sqrt(v / cols + kEps);
    for (int64_t c = 0; c < cols; ++c)
      r.out[n * cols + c] = (xr[c] - m) * rs * f32(w)[c] + (b ? f32(*b)[c] : 0.0);
    r.mean[n] = m;
    r.rstd[n] = rs;
  }
  return r;
}

struct NormCase {
  bool rms, bias;
};
void PrintTo(const NormCase& c, std::ostream* os) {
  *os << (c.rms ? "rmsnorm" : c.bias ? "layernorm with bias" : "layernorm without bias");
}

class KernelNormCases : public ::testing::TestWithParam<NormCase> {};

TEST_P(KernelNormCases, ForwardMatchesReference) {
  const auto [rms, with_bias] = GetParam();
  Tensor x = random_tensor({N, C}, 1), w = random_tensor({C}, 2), b = random_tensor({C}, 3);
  for (int64_t i = 0; i < x.numel(); ++i) f32(x)[i] += 0.7f;  // nonzero mean
  Tensor y = Tensor::empty({N, C}, DType::f32), mean = Tensor::empty({N}, DType::f32),
         rstd = Tensor::empty({N}, DType::f32);
  if (rms)
    rmsnorm_forward(y, rstd, x, w, kEps);
  else
    layernorm_forward(y, mean, rstd, x, w, with_bias ? &b : nullptr, kEps);
  const NormRef ref = norm_ref(x, w, with_bias ? &b : nullptr, rms, N, C);
  expect_matches(y, ref.out, 1e-5, 1e-5, "out");
  expect_matches(rstd, ref.rstd, 1e-5, 0, "rstd");
  if (!rms) expect_matches(mean, ref.mean, 1e-6, 1e-6, "mean");
}

TEST_P(KernelNormCases, BackwardMatchesFiniteDifferencesForEveryInput) {
  // Plain variables, not structured bindings: the lambdas capture them (clang 14 cannot).
  const bool rms = GetParam().rms, with_bias = GetParam().bias;
  Tensor x = random_tensor({N, C}, 4), w = random_tensor({C}, 5), b = random_tensor({C}, 6);
  for (int64_t i = 0; i < x.numel(); ++i) f32(x)[i] += 0.5f;
  Tensor y = Tensor::empty({N, C}, DType::f32), mean = Tensor::empty({N}, DType::f32),
         rstd = Tensor::empty({N}, DType::f32);
  auto forward = [&] {
    if (rms)
      rmsnorm_forward(y, rstd, x, w, kEps);
    else
      layernorm_forward(y, mean, rstd, x, w, with_bias ? &b : nullptr, kEps);
  };
  forward();
  Tensor proj = random_tensor({N, C}, 7);
  Tensor dx = zeros_like(x), dw = zeros_like(w), db = zeros_like(b);
  auto backward = [&] {
    if (rms)
      rmsnorm_backward(dx, dw, proj, x, w, rstd);
    else
      layernorm_backward(dx, dw, with_bias ? &db : nullptr, proj, x, w, mean, rstd);
  };
  backward();
  auto loss = [&] {
    forward();
    return project(y, proj);
  };
  expect_grad_close(loss, x, dx, "dinp", all_elements(x));
  expect_grad_close(loss, w, dw, "dweight", all_elements(w));
  if (!rms && with_bias) expect_grad_close(loss, b, db, "dbias", all_elements(b));
  forward();  // restore the saved statistics for the unperturbed input

  // Accumulate: a second call doubles every gradient.
  Tensor dx1 = copy_of(dx), dw1 = copy_of(dw), db1 = copy_of(db);
  backward();
  expect_doubled(dx, dx1, "dinp");
  expect_doubled(dw, dw1, "dweight");
  if (!rms && with_bias) expect_doubled(db, db1, "dbias");
  if (!with_bias) {
    for (int64_t i = 0; i < C; ++i) EXPECT_EQ(f32(db)[i], 0.f);  // untouched
  }
}

TEST_P(KernelNormCases, BitwiseDeterministicAtModelWidth) {
  const auto [rms, with_bias] = GetParam();
  const int64_t n = 333, c = 768;  // several row blocks per thread
  Tensor x = random_tensor({n, c}, 8), w = random_tensor({c}, 9), b = random_tensor({c}, 10);
  Tensor g = random_tensor({n, c}, 11);
  Tensor y = Tensor::empty({n, c}, DType::f32), mean = Tensor::empty({n}, DType::f32),
         rstd = Tensor::empty({n}, DType::f32);
  Tensor dx[2] = {zeros_like(x), zeros_like(x)}, dw[2] = {zeros_like(w), zeros_like(w)},
         db[2] = {zeros_like(b), zeros_like(b)}, ys[2];
  for (int k = 0; k < 2; ++k) {
    if (rms) {
      rmsnorm_forward(y, rstd, x, w, kEps);
      rmsnorm_backward(dx[k], dw[k], g, x, w, rstd);
    } else {
      layernorm_forward(y, mean, rstd, x, w, with_bias ? &b : nullptr, kEps);
      layernorm_backward(dx[k], dw[k], with_bias ? &db[k] : nullptr, g, x, w, mean, rstd);
    }
    ys[k] = copy_of(y);
  }
  EXPECT_TRUE(bitwise_equal(ys[0], ys[1]));
  EXPECT_TRUE(bitwise_equal(dx[0], dx[1]));
  EXPECT_TRUE(bitwise_equal(dw[0], dw[1]));
  EXPECT_TRUE(bitwise_equal(db[0], db[1]));

  // The parameter gradients summed over many rows still match an f64 reference.
  std::vector<double> rdw(c, 0), rdb(c, 0);
  const NormRef ref = norm_ref(x, w, nullptr, rms, n, c);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < c; ++j) {
      const double xhat = (f32(x)[r * c + j] - ref.mean[r]) * ref.rstd[r];
      rdw[j] += f32(g)[r * c + j] * xhat;
      rdb[j] += f32(g)[r * c + j];
    }
  expect_matches(dw[0], rdw, 1e-4, 2e-4, "dweight over 333 rows");
  if (!rms && with_bias) expect_matches(db[0], rdb, 1e-4, 2e-4, "dbias over 333 rows");
}

INSTANTIATE_TEST_SUITE_P(Kernel, KernelNormCases,
                         ::testing::Values(NormCase{false, true}, NormCase{false, false},
                                           NormCase{true, false}),
                         [](const auto& info) {
                           return std::string(info.param.rms ? "RmsNorm"
                                              : info.param.bias ? "LayerNormBias"
                                                                : "LayerNormNoBias");
                         });

// A large common offset: E[x^2] - E[x]^2 in f32 would lose every digit of the variance.
TEST(KernelNormAccuracy, LayerNormVarianceSurvivesLargeMean) {
  const int64_t n = 5, c = 768;
  Tensor x = random_tensor({n, c}, 12), w = Tensor::empty({c}, DType::f32);
  fill(w, 1.f);
  for (int64_t i = 0; i < x.numel(); ++i) f32(x)[i] += 3000.f;
  Tensor y = Tensor::empty({n, c}, DType::f32), mean = Tensor::empty({n}, DType::f32),
         rstd = Tensor::empty({n}, DType::f32);
  layernorm_forward(y, mean, rstd, x, w, nullptr, kEps);
  const NormRef ref = norm_ref(x, w, nullptr, false, n, c);
  expect_matches(rstd, ref.rstd, 1e-4, 0, "rstd at mean 3000");
  expect_matches(y, ref.out, 0, 2e-3, "out at mean 3000");
}

TEST(KernelNormAccuracy, RejectsMismatchedShapes) {
  Tensor x = random_tensor({N, C}, 1), w = random_tensor({C + 1}, 2);
  Tensor y = Tensor::empty({N, C}, DType::f32), mean = Tensor::empty({N}, DType::f32),
         rstd = Tensor::empty({N}, DType::f32);
  EXPECT_NE(error_of([&] { layernorm_forward(y, mean, rstd, x, w, nullptr, kEps); }), "(no error)");
  EXPECT_NE(error_of([&] { rmsnorm_forward(y, rstd, x, w, kEps); }), "(no error)");
  Tensor w_ok = random_tensor({C}, 3), short_rstd = Tensor::empty({N - 1}, DType::f32);
  EXPECT_NE(error_of([&] { rmsnorm_forward(y, short_rstd, x, w_ok, kEps); }), "(no error)");
}

}  // namespace
}  // namespace zt
