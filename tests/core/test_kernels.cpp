// Layer kernels: forward against naive f64 references, backward against finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "core/kernels.h"
#include "tests/support/gradcheck.h"

namespace zt {
namespace {

using testing::expect_grad_close;
using testing::project;
using testing::random_tensor;

// Shapes that are neither square nor powers of two, so a transpose cannot hide.
constexpr int64_t N = 7, C = 12, OC = 10;

void expect_close(const Tensor& got, const std::vector<double>& want, double tol, const char* what) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size())) << what;
  for (int64_t i = 0; i < got.numel(); ++i)
    ASSERT_NEAR(got.data<float>()[i], want[i], tol * (1 + std::fabs(want[i]))) << what << "[" << i << "]";
}

TEST(KernelMatmul, AllTransposesAndAccumulate) {
  const int64_t M = 5, K = 6, Nn = 4;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Tensor a = random_tensor(ta ? Shape{K, M} : Shape{M, K}, 1);
      Tensor b = random_tensor(tb ? Shape{Nn, K} : Shape{K, Nn}, 2);
      Tensor out = random_tensor({M, Nn}, 3);
      Tensor before = out.clone(MemTag::other);
      matmul(out, a, b, {ta, tb, 2.f, 1.f});
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < Nn; ++j) {
          double s = 0;
          for (int64_t k = 0; k < K; ++k) {
            double av = ta ? a.data<float>()[k * M + i] : a.data<float>()[i * K + k];
            double bv = tb ? b.data<float>()[j * K + k] : b.data<float>()[k * Nn + j];
            s += av * bv;
          }
          EXPECT_NEAR(out.data<float>()[i * Nn + j], 2 * s + before.data<float>()[i * Nn + j], 1e-4)
              << ta << tb;
        }
    }
}

TEST(KernelLinear, ForwardMatchesReferenceAndBackwardMatchesFiniteDifferences) {
  Tensor x = random_tensor({N, C}, 1), w = random_tensor({OC, C}, 2), b = random_tensor({OC}, 3);
  Tensor y = Tensor::empty({N, OC}, DType::f32);
  linear_forward(y, x, w, &b);
  std::vector<double> ref(N * OC);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < OC; ++o) {
      double s = b.data<float>()[o];
      for (int64_t c = 0; c < C; ++c) s += double(x.data<float>()[n * C + c]) * w.data<float>()[o * C + c];
      ref[n * OC + o] = s;
    }
  expect_close(y, ref, 1e-5, "linear");

  Tensor proj = random_tensor({N, OC}, 4);
  Tensor dx = Tensor::zeros({N, C}, DType::f32), dw = Tensor::zeros({OC, C}, DType::f32),
         db = Tensor::zeros({OC}, DType::f32);
  linear_backward(&dx, dw, &db, proj, x, w);
  auto loss = [&] {
    linear_forward(y, x, w, &b);
    return project(y, proj);
  };
  expect_grad_close(loss, x, dx, "dx");
  expect_grad_close(loss, w, dw, "dw");
  expect_grad_close(loss, b, db, "db");

  // Backward accumulates: a second call doubles every gradient.
  Tensor dw1 = dw.clone(MemTag::other);
  linear_backward(&dx, dw, &db, proj, x, w);
  for (int64_t i = 0; i < dw.numel(); ++i) EXPECT_FLOAT_EQ(dw.data<float>()[i], 2 * dw1.data<float>()[i]);
}

void norm_case(bool rms, bool with_bias) {
  Tensor x = random_tensor({N, C}, 5), w = random_tensor({C}, 6), b = random_tensor({C}, 7);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] += 0.5f;  // nonzero mean
  Tensor y = Tensor::empty({N, C}, DType::f32), mean = Tensor::empty({N}, DType::f32),
         rstd = Tensor::empty({N}, DType::f32);
  auto fwd = [&] {
    if (rms)
      rmsnorm_forward(y, rstd, x, w, 1e-5f);
    else
      layernorm_forward(y, mean, rstd, x, w, with_bias ? &b : nullptr, 1e-5f);
  };
  fwd();
  std::vector<double> ref(N * C);
  for (int64_t n = 0; n < N; ++n) {
    double m = 0, v = 0;
    for (int64_t c = 0; c < C; ++c) m += x.data<float>()[n * C + c];
    m /= C;
    for (int64_t c = 0; c < C; ++c) {
      double d = x.data<float>()[n * C + c] - (rms ? 0 : m);
      v += d * d;
    }
    double r = 1 / std::sqrt(v / C + 1e-5);
    for (int64_t c = 0; c < C; ++c)
      ref[n * C + c] = (x.data<float>()[n * C + c] - (rms ? 0 : m)) * r * w.data<float>()[c] +
                       (!rms && with_bias ? b.data<float>()[c] : 0);
  }
  expect_close(y, ref, 1e-5, rms ? "rmsnorm" : "layernorm");

  Tensor proj = random_tensor({N, C}, 8);
  Tensor dx = Tensor::zeros({N, C}, DType::f32), dw = Tensor::zeros({C}, DType::f32),
         db = Tensor::zeros({C}, DType::f32);
  if (rms)
    rmsnorm_backward(dx, dw, proj, x, w, rstd);
  else
    layernorm_backward(dx, dw, with_bias ? &db : nullptr, proj, x, w, mean, rstd);
  auto loss = [&] {
    fwd();
    return project(y, proj);
  };
  testing::GradCheckOptions opt;
  opt.step = 1e-3;
  expect_grad_close(loss, x, dx, "dx", opt);
  expect_grad_close(loss, w, dw, "dw", opt);
  if (!rms && with_bias) expect_grad_close(loss, b, db, "db", opt);
}

TEST(KernelNorm, LayerNormWithBias) { norm_case(false, true); }
TEST(KernelNorm, LayerNormWithoutBias) { norm_case(false, false); }
TEST(KernelNorm, RmsNorm) { norm_case(true, false); }

TEST(KernelActivation, GeluMatchesTanhFormulaAndGradient) {
  Tensor x = random_tensor({N, C}, 9, 2.f), y = Tensor::empty({N, C}, DType::f32);
  gelu_forward(y, x);
  std::vector<double> ref(N * C);
  for (int64_t i = 0; i < x.numel(); ++i) {
    double v = x.data<float>()[i];
    ref[i] = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
  }
  expect_close(y, ref, 1e-5, "gelu");
  Tensor proj = random_tensor({N, C}, 10), dx = Tensor::zeros({N, C}, DType::f32);
  gelu_backward(dx, proj, x);
  expect_grad_close([&] { gelu_forward(y, x); return project(y, proj); }, x, dx, "dx",
                    {1e-3, 2e-2, 2e-3, 84});
}

TEST(KernelActivation, SwigluMatchesFormulaAndGradient) {
  const int64_t F = 9;
  Tensor x = random_tensor({N, 2 * F}, 11, 2.f), y = Tensor::empty({N, F}, DType::f32);
  swiglu_forward(y, x);
  std::vector<double> ref(N * F);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < F; ++i) {
      double g = x.data<float>()[n * 2 * F + i], u = x.data<float>()[n * 2 * F + F + i];
      ref[n * F + i] = g / (1 + std::exp(-g)) * u;
    }
  expect_close(y, ref, 1e-5, "swiglu");
  Tensor proj = random_tensor({N, F}, 12), dx = Tensor::zeros({N, 2 * F}, DType::f32);
  swiglu_backward(dx, proj, x);
  expect_grad_close([&] { swiglu_forward(y, x); return project(y, proj); }, x, dx, "dx",
                    {1e-3, 2e-2, 2e-3, 126});
}

TEST(KernelEmbedding, GathersRowsAddsPositionsAndScattersRepeatedTokens) {
  const int64_t V = 5, T = 4, Nn = 8;  // two sequences, repeated ids
  Tensor tokens = Tensor::empty({Nn}, DType::i32);
  const int32_t ids[Nn] = {1, 3, 1, 1, 0, 4, 3, 1};
  std::copy(ids, ids + Nn, tokens.data<int32_t>());
  Tensor wte = random_tensor({V, C}, 13), wpe = random_tensor({T, C}, 14);
  Tensor y = Tensor::empty({Nn, C}, DType::f32);
  embedding_forward(y, tokens, wte, &wpe, T);
  for (int64_t n = 0; n < Nn; ++n)
    for (int64_t c = 0; c < C; ++c)
      EXPECT_FLOAT_EQ(y.data<float>()[n * C + c],
                      wte.data<float>()[ids[n] * C + c] + wpe.data<float>()[(n % T) * C + c]);
  Tensor proj = random_tensor({Nn, C}, 15);
  Tensor dwte = Tensor::zeros({V, C}, DType::f32), dwpe = Tensor::zeros({T, C}, DType::f32);
  embedding_backward(dwte, &dwpe, proj, tokens, T);
  auto loss = [&] { embedding_forward(y, tokens, wte, &wpe, T); return project(y, proj); };
  expect_grad_close(loss, wte, dwte, "dwte", {1e-2, 1e-3, 1e-4, 60});
  expect_grad_close(loss, wpe, dwpe, "dwpe", {1e-2, 1e-3, 1e-4, 48});
}

TEST(KernelLoss, CrossEntropyMatchesLogSoftmaxAndGradientInPlace) {
  const int64_t V = 11;
  Tensor logits = random_tensor({N, V}, 16, 3.f), targets = Tensor::empty({N}, DType::i32);
  for (int64_t n = 0; n < N; ++n) targets.data<int32_t>()[n] = static_cast<int32_t>((n * 5) % V);
  Tensor losses = Tensor::empty({N}, DType::f32);
  cross_entropy_forward(losses, logits, targets);
  std::vector<double> ref(N);
  for (int64_t n = 0; n < N; ++n) {
    double mx = -1e30, s = 0;
    for (int64_t v = 0; v < V; ++v) mx = std::max(mx, double(logits.data<float>()[n * V + v]));
    for (int64_t v = 0; v < V; ++v) s += std::exp(logits.data<float>()[n * V + v] - mx);
    ref[n] = std::log(s) + mx - logits.data<float>()[n * V + targets.data<int32_t>()[n]];
  }
  expect_close(losses, ref, 1e-5, "loss");

  const float scale = 1.f / N;
  Tensor dlogits = Tensor::empty({N, V}, DType::f32);
  cross_entropy_forward_backward(losses, dlogits, logits, targets, scale);
  auto mean_loss = [&] {
    cross_entropy_forward(losses, logits, targets);
    double s = 0;
    for (int64_t n = 0; n < N; ++n) s += losses.data<float>()[n];
    return s / N;
  };
  expect_grad_close(mean_loss, logits, dlogits, "dlogits", {1e-3, 2e-2, 1e-4, 77});

  Tensor inplace = logits.clone(MemTag::other);
  cross_entropy_forward_backward(losses, inplace, inplace, targets, scale);
  EXPECT_EQ(0, std::memcmp(inplace.raw(), dlogits.raw(), dlogits.nbytes()));

  fill(logits, 1e4f);
  logits.data<float>()[3] = -1e4f;
  cross_entropy_forward(losses, logits, targets);
  for (int64_t n = 0; n < N; ++n) EXPECT_TRUE(std::isfinite(losses.data<float>()[n]));
}

TEST(KernelElementwise, ReductionsConversionsAndDeterminism) {
  Tensor x = random_tensor({100003}, 17);
  double ref = 0;
  for (int64_t i = 0; i < x.numel(); ++i) ref += double(x.data<float>()[i]) * x.data<float>()[i];
  EXPECT_NEAR(sum_squares(x), ref, 1e-9 * ref);
  EXPECT_EQ(sum_squares(x), sum_squares(x));

  Tensor y = random_tensor({100003}, 18), y0 = y.clone(MemTag::other);
  axpy(y, 0.5f, x);
  scale_inplace(y, 2.f);
  for (int64_t i = 0; i < 1000; ++i)
    EXPECT_FLOAT_EQ(y.data<float>()[i], 2.f * (y0.data<float>()[i] + 0.5f * x.data<float>()[i]));

  Tensor h = Tensor::empty({100003}, DType::bf16), back = Tensor::empty({100003}, DType::f32);
  convert(h, x);
  convert(back, h);
  for (int64_t i = 0; i < 1000; ++i) EXPECT_NEAR(back.data<float>()[i], x.data<float>()[i], 1e-2 * std::fabs(x.data<float>()[i]) + 1e-30);
  Tensor f16 = Tensor::empty({100003}, DType::f16);
  convert(f16, x);
  convert(back, f16);
  for (int64_t i = 0; i < 1000; ++i) EXPECT_NEAR(back.data<float>()[i], x.data<float>()[i], 1e-3 * std::fabs(x.data<float>()[i]) + 1e-4);
}

}  // namespace
}  // namespace zt
