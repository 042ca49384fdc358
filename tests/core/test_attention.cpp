// Attention and RoPE kernels: naive f64 references, finite differences, causality, adjoints.
#include <gtest/gtest.h>

#include <cmath>

#include "core/kernels.h"
#include "tests/support/gradcheck.h"

namespace zt {
namespace {

using testing::expect_grad_close;
using testing::project;
using testing::random_tensor;

// Reference causal attention in f64 with explicit loops.
std::vector<double> reference_attention(const Tensor& qkv, const AttnShape& s) {
  const int64_t W = s.qkv_width(), D = s.head_dim, C = s.n_head * D, group = s.n_head / s.n_kv_head;
  const float* x = qkv.data<float>();
  std::vector<double> out(s.B * s.T * C, 0.0);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.n_head; ++h) {
      const int64_t kv = h / group;
      for (int64_t t = 0; t < s.T; ++t) {
        std::vector<double> score(t + 1);
        double mx = -1e300;
        for (int64_t j = 0; j <= t; ++j) {
          double d = 0;
          for (int64_t i = 0; i < D; ++i)
            d += double(x[(b * s.T + t) * W + h * D + i]) * x[(b * s.T + j) * W + (s.n_head + kv) * D + i];
          score[j] = d / std::sqrt(double(D));
          mx = std::max(mx, score[j]);
        }
        double sum = 0;
        for (auto& v : score) sum += v = std::exp(v - mx);
        for (int64_t j = 0; j <= t; ++j)
          for (int64_t i = 0; i < D; ++i)
            out[(b * s.T + t) * C + h * D + i] +=
                score[j] / sum * x[(b * s.T + j) * W + (s.n_head + s.n_kv_head + kv) * D + i];
      }
    }
  return out;
}

class AttentionShapes : public ::testing::TestWithParam<AttnShape> {};

TEST_P(AttentionShapes, ForwardMatchesReferenceAndBackwardMatchesFiniteDifferences) {
  const AttnShape s = GetParam();
  const int64_t C = s.n_head * s.head_dim;
  Tensor qkv = random_tensor({s.B, s.T, s.qkv_width()}, 21);
  Tensor out = Tensor::empty({s.B, s.T, C}, DType::f32), probs = Tensor::empty({s.B, s.n_head, s.T, s.T}, DType::f32);
  attention_forward(out, probs, qkv, s);
  auto ref = reference_attention(qkv, s);
  for (int64_t i = 0; i < out.numel(); ++i) ASSERT_NEAR(out.data<float>()[i], ref[i], 1e-5) << i;

  Tensor proj = random_tensor({s.B, s.T, C}, 22);
  Tensor dqkv = Tensor::zeros(qkv.shape(), DType::f32);
  attention_backward(dqkv, proj, qkv, probs, s);
  testing::GradCheckOptions opt;
  opt.step = 1e-3;
  opt.max_checks = static_cast<int>(qkv.numel());  // every q, k and v element
  expect_grad_close([&] { attention_forward(out, probs, qkv, s); return project(out, proj); }, qkv, dqkv, "dqkv", opt);

  // Backward accumulates.
  Tensor once = dqkv.clone(MemTag::other);
  attention_backward(dqkv, proj, qkv, probs, s);
  for (int64_t i = 0; i < dqkv.numel(); ++i)
    ASSERT_NEAR(dqkv.data<float>()[i], 2 * once.data<float>()[i], 1e-5 * (1 + std::fabs(once.data<float>()[i])));
}

INSTANTIATE_TEST_SUITE_P(Heads, AttentionShapes,
                         ::testing::Values(AttnShape{2, 7, 2, 2, 8},    // MHA
                                           AttnShape{2, 7, 4, 2, 8},    // GQA, 2 groups
                                           AttnShape{1, 5, 4, 1, 4}));  // MQA

TEST(Attention, IsCausal) {
  const AttnShape s{1, 6, 2, 1, 4};
  Tensor qkv = random_tensor({1, 6, s.qkv_width()}, 23);
  Tensor out = Tensor::empty({1, 6, 8}, DType::f32), probs = Tensor::empty({1, 2, 6, 6}, DType::f32);
  attention_forward(out, probs, qkv, s);
  Tensor before = out.clone(MemTag::other);
  for (int64_t i = 4 * s.qkv_width(); i < qkv.numel(); ++i) qkv.data<float>()[i] += 1.f;  // t >= 4
  attention_forward(out, probs, qkv, s);
  for (int64_t i = 0; i < 4 * 8; ++i) EXPECT_EQ(out.data<float>()[i], before.data<float>()[i]);
  bool later_changed = false;
  for (int64_t i = 4 * 8; i < out.numel(); ++i) later_changed |= out.data<float>()[i] != before.data<float>()[i];
  EXPECT_TRUE(later_changed);
}

TEST(Rope, TableFollowsTheFormula) {
  const int64_t T = 5, D = 8;
  Tensor table = rope_table(T, D, 500.f);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < D / 2; ++i) {
      const double angle = t * std::pow(500.0, -2.0 * i / D);
      EXPECT_NEAR(table.data<float>()[t * D + i], std::cos(angle), 1e-6);
      EXPECT_NEAR(table.data<float>()[t * D + D / 2 + i], std::sin(angle), 1e-6);
    }
}

TEST(Rope, RotatesQueriesAndKeysLikeRotateHalfAndLeavesValues) {
  const AttnShape s{2, 5, 4, 2, 8};
  const int64_t D = s.head_dim, W = s.qkv_width();
  Tensor table = rope_table(s.T, D, 10000.f);
  Tensor qkv = random_tensor({s.B, s.T, W}, 24), orig = qkv.clone(MemTag::other);
  rope_forward(qkv, table, s);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t t = 0; t < s.T; ++t)
      for (int64_t h = 0; h < s.n_head + 2 * s.n_kv_head; ++h)
        for (int64_t i = 0; i < D / 2; ++i) {
          const int64_t at = (b * s.T + t) * W + h * D;
          const double x1 = orig.data<float>()[at + i], x2 = orig.data<float>()[at + i + D / 2];
          const double angle = t * std::pow(10000.0, -2.0 * i / D);
          double y1 = x1, y2 = x2;
          if (h < s.n_head + s.n_kv_head) {  // q and k heads rotate; v heads do not
            y1 = x1 * std::cos(angle) - x2 * std::sin(angle);
            y2 = x2 * std::cos(angle) + x1 * std::sin(angle);
          }
          ASSERT_NEAR(qkv.data<float>()[at + i], y1, 1e-5);
          ASSERT_NEAR(qkv.data<float>()[at + i + D / 2], y2, 1e-5);
        }
}

TEST(Rope, BackwardIsTheAdjoint) {
  const AttnShape s{2, 6, 4, 2, 8};
  Tensor table = rope_table(s.T, s.head_dim, 10000.f);
  Tensor x = random_tensor({s.B, s.T, s.qkv_width()}, 25), g = random_tensor(x.shape(), 26);
  Tensor rx = x.clone(MemTag::other), rg = g.clone(MemTag::other);
  rope_forward(rx, table, s);
  rope_backward(rg, table, s);
  double lhs = 0, rhs = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    lhs += double(rx.data<float>()[i]) * g.data<float>()[i];
    rhs += double(x.data<float>()[i]) * rg.data<float>()[i];
  }
  EXPECT_NEAR(lhs, rhs, 1e-5 * std::fabs(lhs));
}

}  // namespace
}  // namespace zt
