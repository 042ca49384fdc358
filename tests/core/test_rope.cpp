#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/kernels.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "tests/support/gradcheck.h"

namespace zt {
namespace {

using testing::expect_grad_close;
using testing::project;
using testing::random_tensor;

double ref_angle(int64_t t, int64_t i, int64_t D, double theta) {
  return static_cast<double>(t) * std::pow(theta, -2.0 * i / static_cast<double>(D));
}

double dot(const Tensor& a, const Tensor& b) {
  double s = 0;
  for (int64_t i = 0; i < a.numel(); ++i) s += double(a.data<float>()[i]) * b.data<float>()[i];
  return s;
}

TEST(Rope, TableMatchesFormula) {
  for (float theta : {10000.f, 500000.f}) {
    const int64_t T = 37, D = 16;
    Tensor table = rope_table(T, D, theta);
    ASSERT_EQ(table.shape(), (Shape{T, D}));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < D / 2; ++i) {
        const double a = ref_angle(t, i, D, theta);
        ASSERT_NEAR(table.data<float>()[t * D + i], std::cos(a), 2e-7) << t << "," << i;
        ASSERT_NEAR(table.data<float>()[t * D + D / 2 + i], std::sin(a), 2e-7) << t << "," << i;
      }
    // Spot values: position 1, frequency 0 is angle 1 rad; the last pair turns slowest.
    EXPECT_NEAR(table.data<float>()[1 * D + 0], std::cos(1.0), 1e-7);
    EXPECT_NEAR(table.data<float>()[1 * D + D / 2], std::sin(1.0), 1e-7);
  }
}

// Hugging Face: q_embed = q * cat(cos, cos) + rotate_half(q) * cat(sin, sin), with
// rotate_half(x) = cat(-x2, x1); applied to q and k heads, v untouched. f64, own angles.
std::vector<double> reference_rope(const Tensor& qkv, const AttnShape& s, double theta) {
  const int64_t D = s.head_dim, half = D / 2, W = s.qkv_width();
  const float* x = qkv.data<float>();
  std::vector<double> y(x, x + qkv.numel());
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t t = 0; t < s.T; ++t)
      for (int64_t hd = 0; hd < s.n_head + s.n_kv_head; ++hd) {
        const float* xh = x + (b * s.T + t) * W + hd * D;
        double* yh = y.data() + (b * s.T + t) * W + hd * D;
        for (int64_t j = 0; j < D; ++j) {
          const int64_t i = j % half;
          const double a = ref_angle(t, i, D, theta);
          const double rot = j < half ? -double(xh[j + half]) : double(xh[j - half]);
          yh[j] = xh[j] * std::cos(a) + rot * std::sin(a);
        }
      }
  return y;
}

const AttnShape kShape{2, 9, 4, 2, 8};  // GQA: 4 q heads, 2 k heads, 2 v heads

TEST(Rope, ForwardMatchesHfRotateHalf) {
  const AttnShape s = kShape;
  Tensor qkv = random_tensor({s.B, s.T, s.qkv_width()}, 101);
  Tensor x = qkv.clone(MemTag::other);
  Tensor table = rope_table(s.T, s.head_dim, 10000.f);
  rope_forward(qkv, table, s);
  std::vector<double> ref = reference_rope(x, s, 10000.0);
  const int64_t W = s.qkv_width(), vstart = (s.n_head + s.n_kv_head) * s.head_dim;
  int changed = 0;
  for (int64_t i = 0; i < qkv.numel(); ++i) {
    const float y = qkv.data<float>()[i];
    ASSERT_NEAR(y, ref[i], 1e-5 * (1 + std::fabs(ref[i]))) << i;
    if (i % W >= vstart) {
      ASSERT_EQ(y, x.data<float>()[i]) << "v must not rotate, index " << i;
    }
    changed += y != x.data<float>()[i];
  }
  EXPECT_GT(changed, qkv.numel() / 2);
}

TEST(Rope, LongerTableAndPositionZeroIsIdentity) {
  const AttnShape s = kShape;
  Tensor qkv = random_tensor({s.B, s.T, s.qkv_width()}, 102);
  Tensor x = qkv.clone(MemTag::other);
  Tensor exact = qkv.clone(MemTag::other);
  rope_forward(exact, rope_table(s.T, s.head_dim, 10000.f), s);
  // A table covering more positions than T gives the same result (rows indexed by t).
  rope_forward(qkv, rope_table(3 * s.T, s.head_dim, 10000.f), s);
  EXPECT_EQ(0, std::memcmp(qkv.raw(), exact.raw(), qkv.nbytes()));
  const int64_t W = s.qkv_width();
  for (int64_t b = 0; b < s.B; ++b)
    EXPECT_EQ(0, std::memcmp(qkv.data<float>() + b * s.T * W, x.data<float>() + b * s.T * W,
                             W * sizeof(float)))
        << "position 0 of batch " << b << " changed";
}

TEST(Rope, PreservesPairNorms) {
  const AttnShape s = kShape;
  Tensor qkv = random_tensor({s.B, s.T, s.qkv_width()}, 103);
  Tensor x = qkv.clone(MemTag::other);
  rope_forward(qkv, rope_table(s.T, s.head_dim, 10000.f), s);
  const int64_t D = s.head_dim, half = D / 2, W = s.qkv_width();
  for (int64_t r = 0; r < s.B * s.T; ++r)
    for (int64_t hd = 0; hd < s.n_head + s.n_kv_head; ++hd)
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = r * W + hd * D + i, b = a + half;
        auto sq = [&](const Tensor& t) {
          return std::hypot(double(t.data<float>()[a]), double(t.data<float>()[b]));
        };
        ASSERT_NEAR(sq(qkv), sq(x), 1e-5 * (1 + sq(x))) << "row " << r << " head " << hd;
      }
}

TEST(Rope, BackwardIsAdjointAndInverse) {
  const AttnShape s = kShape;
  Tensor table = rope_table(s.T, s.head_dim, 10000.f);
  Tensor x = random_tensor({s.B, s.T, s.qkv_width()}, 104);
  Tensor g = random_tensor({s.B, s.T, s.qkv_width()}, 105);
  Tensor rx = x.clone(MemTag::other);
  rope_forward(rx, table, s);
  Tensor rg = g.clone(MemTag::other);
  rope_backward(rg, table, s);
  const double lhs = dot(rx, g), rhs = dot(x, rg);
  EXPECT_NEAR(lhs, rhs, 1e-5 * std::max(std::fabs(lhs), 1.0));
  // The rotation is orthogonal, so its adjoint is its inverse: backward undoes forward.
  Tensor back = rx.clone(MemTag::other);
  rope_backward(back, table, s);
  for (int64_t i = 0; i < x.numel(); ++i)
    ASSERT_NEAR(back.data<float>()[i], x.data<float>()[i], 1e-5) << i;
  // The backward leaves dv alone and actually changes dq/dk.
  const int64_t W = s.qkv_width(), vstart = (s.n_head + s.n_kv_head) * s.head_dim;
  int changed = 0;
  for (int64_t i = 0; i < g.numel(); ++i) {
    if (i % W >= vstart) {
      ASSERT_EQ(rg.data<float>()[i], g.data<float>()[i]) << i;
    }
    changed += rg.data<float>()[i] != g.data<float>()[i];
  }
  EXPECT_GT(changed, g.numel() / 2);
}

TEST(Rope, RopeThenAttentionMatchesFiniteDifferences) {
  for (const AttnShape& s : {AttnShape{2, 5, 2, 1, 8}, AttnShape{1, 6, 2, 2, 4}}) {
    Tensor table = rope_table(s.T, s.head_dim, 100.f);  // small theta: every pair rotates a lot
    Tensor x = random_tensor({s.B, s.T, s.qkv_width()}, 106);
    Tensor proj = random_tensor({s.B, s.T, s.n_head * s.head_dim}, 107);
    Tensor rotated = x.clone(MemTag::other);
    Tensor out = Tensor::zeros({s.B, s.T, s.n_head * s.head_dim}, DType::f32);
    Tensor lse = Tensor::zeros({s.B, s.n_head, s.T}, DType::f32);
    auto loss = [&] {
      rotated.copy_from(x);
      rope_forward(rotated, table, s);
      attention_forward(out, lse, rotated, s);
      return project(out, proj);
    };
    loss();
    Tensor dx = Tensor::zeros(x.shape(), DType::f32);
    attention_backward(dx, proj, rotated, out, lse, s);
    rope_backward(dx, table, s);
    testing::GradCheckOptions opt;
    opt.max_checks = static_cast<int>(x.numel());  // every index
    expect_grad_close(loss, x, dx, "rope+attention", opt);
  }
}

TEST(Rope, Deterministic) {
  const AttnShape s = kShape;
  Tensor table = rope_table(s.T, s.head_dim, 10000.f);
  EXPECT_EQ(0, std::memcmp(table.raw(), rope_table(s.T, s.head_dim, 10000.f).raw(),
                           table.nbytes()));
  Tensor a = random_tensor({s.B, s.T, s.qkv_width()}, 108);
  Tensor b = a.clone(MemTag::other);
  rope_forward(a, table, s);
  rope_forward(b, table, s);
  EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.nbytes()));
  rope_backward(a, table, s);
  rope_backward(b, table, s);
  EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.nbytes()));
}

TEST(Rope, RejectsBadArguments) {
  const AttnShape s = kShape;
  Tensor qkv = random_tensor({s.B, s.T, s.qkv_width()}, 109);
  EXPECT_THROW(rope_forward(qkv, rope_table(s.T - 1, s.head_dim, 10000.f), s), Error);
  EXPECT_THROW(rope_forward(qkv, rope_table(s.T, s.head_dim + 2, 10000.f), s), Error);
  EXPECT_THROW(rope_table(4, 7, 10000.f), Error);
  AttnShape odd = s;
  odd.head_dim = 7;
  EXPECT_THROW(rope_backward(qkv, rope_table(s.T, 8, 10000.f), odd), Error);
}

}  // namespace
}  // namespace zt
