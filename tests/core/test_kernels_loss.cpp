// Cross entropy: losses against an f64 log-softmax, gradients against the analytic
// (softmax - onehot) * scale and finite differences, in place == out of place, large
// logits, a GPT-2-sized vocabulary, determinism and bad targets.
#include <limits>

#include "tests/core/test_kernels_util.h"

namespace zt {
namespace {

using namespace zt::testing;

constexpr int64_t N = 7, V = 11;

Tensor targets_for(int64_t n, int64_t v) {
  Tensor t = Tensor::empty({n}, DType::i32);
  for (int64_t r = 0; r < n; ++r) t.data<int32_t>()[r] = static_cast<int32_t>((r * 5 + 3) % v);
  return t;
}

struct CeRef {
  std::vector<double> loss, grad;
};

CeRef ce_ref(const Tensor& logits, const Tensor& targets, int64_t n, int64_t v, double scale) {
  CeRef r{std::vector<double>(n), std::vector<double>(n * v)};
  for (int64_t i = 0; i < n; ++i) {
    const float* x = f32(logits) + i * v;
    double mx = -std::numeric_limits<double>::infinity(), s = 0;
    for (int64_t j = 0; j < v; ++j) mx = std::max(mx, double(x[j]));
    for (int64_t j = 0; j < v; ++j) s += std::exp(x[j] - mx);
    const int32_t t = targets.data<int32_t>()[i];
    r.loss[i] = std::log(s) + mx - x[t];
    for (int64_t j = 0; j < v; ++j) r.grad[i * v + j] = scale * (std::exp(x[j] - mx) / s - (j == t));
  }
  return r;
}

TEST(KernelLossCases, ForwardMatchesLogSoftmax) {
  Tensor logits = random_tensor({N, V}, 1, 3.f), targets = targets_for(N, V);
  Tensor losses = Tensor::empty({N}, DType::f32);
  cross_entropy_forward(losses, logits, targets);
  expect_matches(losses, ce_ref(logits, targets, N, V, 1).loss, 1e-6, 1e-6, "losses");
}

TEST(KernelLossCases, ForwardBackwardMatchesSoftmaxMinusOneHotAndFiniteDifferences) {
  Tensor logits = random_tensor({2, 3, V}, 2, 3.f), targets = targets_for(N - 1, V);  // (B,T,V)
  const int64_t n = 6;
  const float scale = 1.f / n;
  Tensor losses = Tensor::empty({n}, DType::f32), dlogits = Tensor::empty(logits.shape(), DType::f32);
  fill(dlogits, 123.f);  // overwritten, not accumulated
  cross_entropy_forward_backward(losses, dlogits, logits, targets, scale);
  const CeRef ref = ce_ref(logits, targets, n, V, scale);
  expect_matches(losses, ref.loss, 1e-6, 1e-6, "losses");
  expect_matches(dlogits, ref.grad, 1e-5, 1e-7, "dlogits");
  auto mean_loss = [&] {
    cross_entropy_forward(losses, logits, targets);
    double s = 0;
    for (int64_t r = 0; r < n; ++r) s += f32(losses)[r];
    return s * scale;
  };
  expect_grad_close(mean_loss, logits, dlogits, "dlogits", all_elements(logits, 1e-3, 2e-2, 1e-4));
}

TEST(KernelLossCases, InPlaceEqualsOutOfPlace) {
  Tensor logits = random_tensor({N, V}, 3, 3.f), targets = targets_for(N, V);
  Tensor l1 = Tensor::empty({N}, DType::f32), l2 = Tensor::empty({N}, DType::f32);
  Tensor dlogits = Tensor::empty({N, V}, DType::f32);
  cross_entropy_forward_backward(l1, dlogits, logits, targets, 0.25f);
  Tensor inplace = copy_of(logits);
  cross_entropy_forward_backward(l2, inplace, inplace, targets, 0.25f);
  EXPECT_TRUE(bitwise_equal(inplace, dlogits));
  EXPECT_TRUE(bitwise_equal(l1, l2));
  // And forward-only agrees with the fused kernel's losses.
  Tensor l3 = Tensor::empty({N}, DType::f32);
  cross_entropy_forward(l3, logits, targets);
  expect_matches(l3, std::vector<double>(f32(l1), f32(l1) + N), 1e-7, 0, "forward vs fused");
}

TEST(KernelLossCases, LargeLogitsStayFiniteAndCorrect) {
  const int64_t n = 3, v = 5;
  Tensor logits = Tensor::zeros({n, v}, DType::f32), targets = Tensor::empty({n}, DType::i32);
  // Row 0: 1e4 at the target. Row 1: 1e4 elsewhere, target at -1e4. Row 2: all 1e4 (ties).
  f32(logits)[0 * v + 1] = 1e4f;
  f32(logits)[1 * v + 2] = 1e4f, f32(logits)[1 * v + 4] = -1e4f;
  for (int64_t j = 0; j < v; ++j) f32(logits)[2 * v + j] = 1e4f;
  const int32_t t[n] = {1, 4, 0};
  std::copy(t, t + n, targets.data<int32_t>());
  Tensor losses = Tensor::empty({n}, DType::f32), d = copy_of(logits);
  cross_entropy_forward_backward(losses, d, d, targets, 1.f);
  EXPECT_NEAR(f32(losses)[0], 0.f, 1e-6f);
  EXPECT_NEAR(f32(losses)[1], 2e4f, 1.f);
  EXPECT_NEAR(f32(losses)[2], std::log(5.f), 1e-6f);
  for (int64_t i = 0; i < d.numel(); ++i) ASSERT_TRUE(std::isfinite(f32(d)[i])) << i;
  EXPECT_NEAR(f32(d)[0 * v + 1], 0.f, 1e-6f);
  EXPECT_NEAR(f32(d)[1 * v + 2], 1.f, 1e-6f);
  EXPECT_NEAR(f32(d)[1 * v + 4], -1.f, 1e-6f);
  EXPECT_NEAR(f32(d)[2 * v + 0], 0.2f - 1.f, 1e-6f);
  EXPECT_NEAR(f32(d)[2 * v + 3], 0.2f, 1e-6f);
}

TEST(KernelLossCases, Gpt2VocabularyIsAccurateAndDeterministic) {
  // Flat logits over 50257 entries: the sum of exps is large, so sloppy f32 accumulation
  // shows up in the loss. Each row's gradient must sum to ~0.
  const int64_t n = 3, v = 50257;
  Tensor logits = random_tensor({n, v}, 4, 0.5f), targets = targets_for(n, v);
  f32(logits)[1 * v + 7] = 30.f;  // one confident row
  Tensor losses = Tensor::empty({n}, DType::f32), d1 = Tensor::empty({n, v}, DType::f32);
  cross_entropy_forward_backward(losses, d1, logits, targets, 1.f);
  const CeRef ref = ce_ref(logits, targets, n, v, 1.0);
  expect_matches(losses, ref.loss, 2e-6, 1e-6, "losses");
  expect_matches(d1, ref.grad, 1e-4, 1e-9, "dlogits");
  for (int64_t r = 0; r < n; ++r) {
    double s = 0;
    for (int64_t j = 0; j < v; ++j) s += f32(d1)[r * v + j];
    EXPECT_NEAR(s, 0.0, 1e-5) << "row " << r;
  }
  Tensor d2 = Tensor::empty({n, v}, DType::f32), losses2 = Tensor::empty({n}, DType::f32);
  cross_entropy_forward_backward(losses2, d2, logits, targets, 1.f);
  EXPECT_TRUE(bitwise_equal(d1, d2));
  EXPECT_TRUE(bitwise_equal(losses, losses2));
}

// The row maximum that the exps are taken against, wherever it lies: in each lane of the
// whole vectors and in the tail (53 = 3 x 16 + 5). At 200 above the rest, exp of a logit
// measured against a smaller maximum would overflow (fast_exp clamps it) and the loss be wrong.
// A NaN logit makes its row's loss NaN.
TEST(KernelLossCases, FindsTheRowMaximumAtEveryPosition) {
  const int64_t v = 53;
  Tensor logits = random_tensor({v, v}, 6, 1.f), targets = targets_for(v, v);
  for (int64_t p = 0; p < v; ++p) f32(logits)[p * v + p] = 200.f;  // row p's maximum at p
  Tensor losses = Tensor::empty({v}, DType::f32), d = Tensor::empty({v, v}, DType::f32);
  cross_entropy_forward_backward(losses, d, logits, targets, 1.f);
  const CeRef ref = ce_ref(logits, targets, v, v, 1.0);
  expect_matches(losses, ref.loss, 1e-5, 1e-6, "losses");
  expect_matches(d, ref.grad, 1e-5, 1e-7, "dlogits");
  f32(logits)[2 * v + 40] = std::numeric_limits<float>::quiet_NaN();
  cross_entropy_forward(losses, logits, targets);
  EXPECT_TRUE(std::isnan(f32(losses)[2]));
  EXPECT_TRUE(std::isfinite(f32(losses)[1]));
}

TEST(KernelLossCases, RejectsOutOfRangeTargetsAndBadShapes) {
  Tensor logits = random_tensor({N, V}, 5), targets = targets_for(N, V);
  Tensor losses = Tensor::empty({N}, DType::f32);
  targets.data<int32_t>()[3] = static_cast<int32_t>(V);
  EXPECT_NE(error_of([&] { cross_entropy_forward(losses, logits, targets); }), "(no error)");
  targets.data<int32_t>()[3] = -1;
  Tensor d = Tensor::empty({N, V}, DType::f32);
  EXPECT_NE(error_of([&] { cross_entropy_forward_backward(losses, d, logits, targets, 1.f); }),
            "(no error)");
  targets.data<int32_t>()[3] = 0;
  Tensor short_losses = Tensor::empty({N - 1}, DType::f32);
  EXPECT_NE(error_of([&] { cross_entropy_forward(short_losses, logits, targets); }), "(no error)");
  EXPECT_EQ(error_of([&] { cross_entropy_forward(losses, logits, targets); }), "(no error)");
}

}  // namespace
}  // namespace zt
