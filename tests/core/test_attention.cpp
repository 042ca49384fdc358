#include <gtest/gtest.h>
#include <omp.h>

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

// Independent f64 reference: explicit loops, mask, max-subtracted softmax.
struct RefResult {
  std::vector<double> out;    // (B, T, H*D)
  std::vector<double> probs;  // (B, H, T, T)
};

RefResult reference_attention(const Tensor& qkv, const AttnShape& s) {
  const int64_t B = s.B, T = s.T, H = s.n_head, KVH = s.n_kv_head, D = s.head_dim;
  const int64_t W = s.qkv_width();
  const float* x = qkv.data<float>();
  RefResult r;
  r.out.assign(B * T * H * D, 0.0);
  r.probs.assign(B * H * T * T, 0.0);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t kvh = h / (H / KVH);
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> score(T, 0.0);
        double mx = -INFINITY;
        for (int64_t j = 0; j <= t; ++j) {
          double dot = 0;
          for (int64_t i = 0; i < D; ++i)
            dot += static_cast<double>(x[(b * T + t) * W + h * D + i]) *
                   x[(b * T + j) * W + (H + kvh) * D + i];
          score[j] = dot / std::sqrt(static_cast<double>(D));
          mx = std::max(mx, score[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j <= t; ++j) sum += std::exp(score[j] - mx);
        for (int64_t j = 0; j <= t; ++j) {
          double p = std::exp(score[j] - mx) / sum;
          r.probs[((b * H + h) * T + t) * T + j] = p;
          for (int64_t i = 0; i < D; ++i)
            r.out[(b * T + t) * H * D + h * D + i] +=
                p * x[(b * T + j) * W + (H + KVH + kvh) * D + i];
        }
      }
    }
  }
  return r;
}

Tensor make_out(const AttnShape& s) {
  return Tensor::zeros({s.B, s.T, s.n_head * s.head_dim}, DType::f32);
}
Tensor make_probs(const AttnShape& s) {
  return Tensor::zeros({s.B, s.n_head, s.T, s.T}, DType::f32);
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// T = 7 (not a power of two), plus T = 150 > the kernel's 64-row causal block, so the blocked
// lower-triangle path with a ragged last block is exercised too.
const AttnShape kShapes[] = {
    {2, 7, 4, 4, 8},    // MHA
    {2, 7, 4, 2, 8},    // GQA, 2 query heads per kv head
    {2, 7, 4, 1, 8},    // MQA
    {1, 150, 4, 2, 8},  // several causal blocks
};

std::string name(const AttnShape& s) {
  return "B" + std::to_string(s.B) + "_T" + std::to_string(s.T) + "_H" +
         std::to_string(s.n_head) + "_KVH" + std::to_string(s.n_kv_head) + "_D" +
         std::to_string(s.head_dim);
}

class AttentionShapes : public ::testing::TestWithParam<AttnShape> {};

TEST_P(AttentionShapes, ForwardMatchesNaiveF64Reference) {
  const AttnShape s = GetParam();
  Tensor qkv = random_tensor({s.B, s.T, s.qkv_width()}, 11);
  Tensor out = make_out(s), probs = make_probs(s);
  for (int64_t i = 0; i < out.numel(); ++i) out.data<float>()[i] = 123.f;  // must overwrite
  attention_forward(out, probs, qkv, s);
  RefResult ref = reference_attention(qkv, s);
  const float* o = out.data<float>();
  const float* p = probs.data<float>();
  int bad = 0;
  for (int64_t i = 0; i < out.numel(); ++i)
    if (std::fabs(o[i] - ref.out[i]) > 1e-5 + 1e-5 * std::fabs(ref.out[i]) && ++bad <= 5)
      ADD_FAILURE() << "out[" << i << "] = " << o[i] << " vs " << ref.out[i];
  for (int64_t i = 0; i < probs.numel(); ++i)
    if (std::fabs(p[i] - ref.probs[i]) > 1e-6 + 1e-5 * ref.probs[i] && ++bad <= 5)
      ADD_FAILURE() << "probs[" << i << "] = " << p[i] << " vs " << ref.probs[i];
  EXPECT_EQ(bad, 0);
  // Probabilities: exactly zero above the diagonal, rows sum to one.
  for (int64_t bh = 0; bh < s.B * s.n_head; ++bh) {
    for (int64_t t = 0; t < s.T; ++t) {
      const float* row = p + (bh * s.T + t) * s.T;
      double sum = 0;
      for (int64_t j = 0; j < s.T; ++j) {
        if (j > t) {
          ASSERT_EQ(row[j], 0.f) << "bh " << bh << " t " << t << " j " << j;
        }
        sum += row[j];
      }
      ASSERT_NEAR(sum, 1.0, 1e-5);
    }
  }
}

// Finite differences probe every element, so the multi-block case is kept narrow.
const AttnShape kGradShapes[] = {
    {2, 7, 4, 4, 8},
    {2, 7, 4, 2, 8},
    {2, 7, 4, 1, 8},
    {1, 70, 2, 1, 4},
};

class AttentionGrad : public ::testing::TestWithParam<AttnShape> {};

TEST_P(AttentionGrad, BackwardMatchesFiniteDifferences) {
  const AttnShape s = GetParam();
  Tensor qkv = random_tensor({s.B, s.T, s.qkv_width()}, 21);
  Tensor proj = random_tensor({s.B, s.T, s.n_head * s.head_dim}, 22);
  Tensor out = make_out(s), probs = make_probs(s);
  auto loss = [&] {
    attention_forward(out, probs, qkv, s);
    return project(out, proj);
  };
  loss();
  Tensor dqkv = Tensor::zeros(qkv.shape(), DType::f32);
  attention_backward(dqkv, proj, qkv, probs, s);

  // Each of the q, k and v parts must carry gradient (all are probed below: every index).
  const int64_t W = s.qkv_width(), D = s.head_dim;
  double part_max[3] = {0, 0, 0};
  for (int64_t r = 0; r < s.B * s.T; ++r)
    for (int64_t c = 0; c < W; ++c) {
      int part = c < s.n_head * D ? 0 : c < (s.n_head + s.n_kv_head) * D ? 1 : 2;
      part_max[part] = std::max(part_max[part], std::fabs(double(dqkv.data<float>()[r * W + c])));
    }
  EXPECT_GT(part_max[0], 0.05) << "dq";
  EXPECT_GT(part_max[1], 0.05) << "dk";
  EXPECT_GT(part_max[2], 0.05) << "dv";

  testing::GradCheckOptions opt;
  opt.max_checks = static_cast<int>(qkv.numel());  // probe every index
  expect_grad_close(loss, qkv, dqkv, "dqkv " + name(s), opt);
}

TEST_P(AttentionShapes, IsCausal) {
  const AttnShape s = GetParam();
  Tensor qkv = random_tensor({s.B, s.T, s.qkv_width()}, 31);
  Tensor out0 = make_out(s), out1 = make_out(s), probs = make_probs(s);
  attention_forward(out0, probs, qkv, s);
  const int64_t W = s.qkv_width(), HD = s.n_head * s.head_dim;
  for (int64_t t : {int64_t{1}, s.T / 2, s.T - 1}) {
    Tensor perturbed = qkv.clone(MemTag::other);
    const int64_t b = s.B - 1;
    for (int64_t c = 0; c < W; ++c) perturbed.data<float>()[(b * s.T + t) * W + c] += 0.5f;
    attention_forward(out1, probs, perturbed, s);
    const float* a = out0.data<float>();
    const float* o = out1.data<float>();
    for (int64_t tt = 0; tt < s.T; ++tt) {
      bool same = std::memcmp(a + (b * s.T + tt) * HD, o + (b * s.T + tt) * HD,
                              HD * sizeof(float)) == 0;
      if (tt < t) {
        EXPECT_TRUE(same) << "out at " << tt << " changed by input at " << t;
      } else if (tt == t) {
        EXPECT_FALSE(same) << "out at " << t << " ignores its own input";
      }
    }
    // Other batch rows are untouched by this batch's input.
    if (s.B > 1) {
      EXPECT_EQ(0, std::memcmp(a, o, s.T * HD * sizeof(float)));
    }
  }
}

TEST_P(AttentionShapes, BackwardAccumulates) {
  const AttnShape s = GetParam();
  Tensor qkv = random_tensor({s.B, s.T, s.qkv_width()}, 41);
  Tensor dout = random_tensor({s.B, s.T, s.n_head * s.head_dim}, 42);
  Tensor out = make_out(s), probs = make_probs(s);
  attention_forward(out, probs, qkv, s);
  Tensor g = Tensor::zeros(qkv.shape(), DType::f32);
  attention_backward(g, dout, qkv, probs, s);
  Tensor twice = Tensor::zeros(qkv.shape(), DType::f32);
  attention_backward(twice, dout, qkv, probs, s);
  attention_backward(twice, dout, qkv, probs, s);
  Tensor init = random_tensor(qkv.shape(), 43);
  Tensor acc = init.clone(MemTag::other);
  attention_backward(acc, dout, qkv, probs, s);
  double gmax = 0;
  for (int64_t i = 0; i < g.numel(); ++i) {
    const float gi = g.data<float>()[i];
    gmax = std::max(gmax, double(std::fabs(gi)));
    ASSERT_NEAR(twice.data<float>()[i], 2 * gi, 1e-5 + 1e-5 * std::fabs(gi)) << i;
    ASSERT_NEAR(acc.data<float>()[i], init.data<float>()[i] + gi, 1e-5 + 1e-5 * std::fabs(gi))
        << i;
  }
  EXPECT_GT(gmax, 0.1);
}

TEST_P(AttentionShapes, DeterministicAcrossCallsAndThreadCounts) {
  const AttnShape s = GetParam();
  Tensor qkv = random_tensor({s.B, s.T, s.qkv_width()}, 51);
  Tensor dout = random_tensor({s.B, s.T, s.n_head * s.head_dim}, 52);
  const int saved = omp_get_max_threads();
  Tensor out[3], probs[3], dqkv[3];
  const int threads[3] = {saved, saved, saved == 1 ? 2 : 1};
  for (int r = 0; r < 3; ++r) {
    omp_set_num_threads(threads[r]);
    out[r] = make_out(s);
    probs[r] = make_probs(s);
    dqkv[r] = Tensor::zeros(qkv.shape(), DType::f32);
    attention_forward(out[r], probs[r], qkv, s);
    attention_backward(dqkv[r], dout, qkv, probs[r], s);
  }
  omp_set_num_threads(saved);
  for (int r = 1; r < 3; ++r) {
    EXPECT_TRUE(bitwise_equal(out[0], out[r])) << "run " << r;
    EXPECT_TRUE(bitwise_equal(probs[0], probs[r])) << "run " << r;
    EXPECT_TRUE(bitwise_equal(dqkv[0], dqkv[r])) << "run " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Attention, AttentionShapes, ::testing::ValuesIn(kShapes),
                         [](const auto& info) { return name(info.param); });
INSTANTIATE_TEST_SUITE_P(Attention, AttentionGrad, ::testing::ValuesIn(kGradShapes),
                         [](const auto& info) { return name(info.param); });

TEST(Attention, LargeLogitsStayFinite) {
  // Max subtraction: scores of several hundred must not overflow exp.
  const AttnShape s{1, 5, 1, 1, 4};
  Tensor qkv = random_tensor({s.B, s.T, s.qkv_width()}, 61, 30.f);
  Tensor out = make_out(s), probs = make_probs(s);
  attention_forward(out, probs, qkv, s);
  RefResult ref = reference_attention(qkv, s);
  for (int64_t i = 0; i < out.numel(); ++i) {
    ASSERT_TRUE(std::isfinite(out.data<float>()[i]));
    EXPECT_NEAR(out.data<float>()[i], ref.out[i], 1e-3 + 1e-4 * std::fabs(ref.out[i]));
  }
}

TEST(Attention, RejectsBadShapes) {
  const AttnShape s{2, 7, 4, 2, 8};
  Tensor qkv = random_tensor({s.B, s.T, s.qkv_width()}, 71);
  Tensor out = make_out(s), probs = make_probs(s);
  AttnShape bad_group = s;
  bad_group.n_kv_head = 3;
  EXPECT_THROW(attention_forward(out, probs, qkv, bad_group), Error);
  Tensor small_probs = Tensor::zeros({s.B, s.n_head, s.T, s.T - 1}, DType::f32);
  EXPECT_THROW(attention_forward(out, small_probs, qkv, s), Error);
  Tensor wrong_qkv = random_tensor({s.B, s.T, s.qkv_width() + 8}, 72);
  EXPECT_THROW(attention_forward(out, probs, wrong_qkv, s), Error);
  Tensor dqkv = Tensor::zeros({s.B, s.T, s.qkv_width()}, DType::f64);
  EXPECT_THROW(attention_backward(dqkv, out, qkv, probs, s), Error);
}

}  // namespace
}  // namespace zt
