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

// Independent f64 reference: explicit loops, mask, max-subtracted softmax, and the textbook
// softmax backward from the whole probability matrix (which the kernel never builds).
struct RefResult {
  std::vector<double> out;   // (B, T, H*D)
  std::vector<double> lse;   // (B, H, T)
  std::vector<double> dqkv;  // (B, T, W), given dout
};

RefResult reference_attention(const Tensor& qkv, const AttnShape& s, const Tensor* dout = nullptr) {
  const int64_t B = s.B, T = s.T, H = s.n_head, KVH = s.n_kv_head, D = s.head_dim;
  const int64_t W = s.qkv_width(), HD = H * D;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const float* x = qkv.data<float>();
  auto at = [&](int64_t b, int64_t t, int64_t col) { return static_cast<double>(x[(b * T + t) * W + col]); };
  RefResult r;
  r.out.assign(B * T * HD, 0.0);
  r.lse.assign(B * H * T, 0.0);
  r.dqkv.assign(B * T * W, 0.0);
  std::vector<double> p(T), dp(T);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t kvh = h / (H / KVH), qc = h * D, kc = (H + kvh) * D, vc = (H + KVH + kvh) * D;
      for (int64_t t = 0; t < T; ++t) {
        double mx = -INFINITY;
        for (int64_t j = 0; j <= t; ++j) {
          double dot = 0;
          for (int64_t i = 0; i < D; ++i) dot += at(b, t, qc + i) * at(b, j, kc + i);
          p[j] = dot * scale;
          mx = std::max(mx, p[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j <= t; ++j) sum += std::exp(p[j] - mx);
        r.lse[(b * H + h) * T + t] = mx + std::log(sum);
        for (int64_t j = 0; j <= t; ++j) {
          p[j] = std::exp(p[j] - mx) / sum;
          for (int64_t i = 0; i < D; ++i) r.out[(b * T + t) * HD + qc + i] += p[j] * at(b, j, vc + i);
        }
        if (!dout) continue;
        const float* go = dout->data<float>() + (b * T + t) * HD + qc;
        double pdp = 0;
        for (int64_t j = 0; j <= t; ++j) {
          dp[j] = 0;
          for (int64_t i = 0; i < D; ++i) dp[j] += go[i] * at(b, j, vc + i);
          pdp += p[j] * dp[j];
        }
        for (int64_t j = 0; j <= t; ++j) {
          const double ds = p[j] * (dp[j] - pdp) * scale;
          for (int64_t i = 0; i < D; ++i) {
            r.dqkv[(b * T + t) * W + qc + i] += ds * at(b, j, kc + i);
            r.dqkv[(b * T + j) * W + kc + i] += ds * at(b, t, qc + i);
            r.dqkv[(b * T + j) * W + vc + i] += p[j] * go[i];
          }
        }
      }
    }
  }
  return r;
}

Tensor make_out(const AttnShape& s) {
  return Tensor::zeros({s.B, s.T, s.n_head * s.head_dim}, DType::f32);
}
Tensor make_lse(const AttnShape& s) { return Tensor::zeros({s.B, s.n_head, s.T}, DType::f32); }

// Random q/k/v (stream) and dout (stream + 1), forward's out and log-sum-exp, and the
// gradient backward accumulates into zeros.
struct Pass {
  Tensor qkv, dout, out, lse, dqkv;
};
Pass forward_backward(const AttnShape& s, uint64_t stream) {
  Pass p{random_tensor({s.B, s.T, s.qkv_width()}, stream),
         random_tensor({s.B, s.T, s.n_head * s.head_dim}, stream + 1), make_out(s), make_lse(s), Tensor()};
  attention_forward(p.out, p.lse, p.qkv, s);
  p.dqkv = Tensor::zeros(p.qkv.shape(), DType::f32);
  attention_backward(p.dqkv, p.dout, p.qkv, p.out, p.lse, s);
  return p;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// The kernel works in 64 x 64 tiles: T = 1, T = 7 (inside one tile), T = 150 and 520 (ragged
// last tiles, 3 and 9 query tiles), T = 300 with D = 128; MHA, GQA and MQA.
const AttnShape kShapes[] = {
    {2, 7, 4, 4, 8},      // MHA
    {2, 7, 4, 2, 8},      // GQA, 2 query heads per kv head
    {2, 7, 4, 1, 8},      // MQA
    {3, 1, 4, 2, 16},     // one position: only the diagonal
    {1, 150, 4, 2, 8},    // several tiles
    {1, 520, 4, 2, 64},   // GQA, D = 64, many tiles
    {2, 300, 2, 2, 128},  // MHA, D = 128
};

std::string name(const AttnShape& s) {
  return "B" + std::to_string(s.B) + "_T" + std::to_string(s.T) + "_H" +
         std::to_string(s.n_head) + "_KVH" + std::to_string(s.n_kv_head) + "_D" +
         std::to_string(s.head_dim);
}

// Counts (and reports the first few) entries of got off from want by more than atol + rtol|want|.
int count_off(const float* got, const std::vector<double>& want, double atol, double rtol, const char* what) {
  int bad = 0;
  for (size_t i = 0; i < want.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= atol + rtol * std::fabs(want[i])) && ++bad <= 5)
      ADD_FAILURE() << what << "[" << i << "] = " << got[i] << " vs " << want[i];
  return bad;
}

class AttentionShapes : public ::testing::TestWithParam<AttnShape> {};

TEST_P(AttentionShapes, ForwardMatchesNaiveF64Reference) {
  const AttnShape s = GetParam();
  Tensor qkv = random_tensor({s.B, s.T, s.qkv_width()}, 11);
  Tensor out = make_out(s), lse = make_lse(s);
  for (int64_t i = 0; i < out.numel(); ++i) out.data<float>()[i] = 123.f;  // must overwrite
  for (int64_t i = 0; i < lse.numel(); ++i) lse.data<float>()[i] = 123.f;
  attention_forward(out, lse, qkv, s);
  RefResult ref = reference_attention(qkv, s);
  EXPECT_EQ(count_off(out.data<float>(), ref.out, 1e-5, 1e-5, "out"), 0);
  EXPECT_EQ(count_off(lse.data<float>(), ref.lse, 1e-5, 1e-6, "lse"), 0);
}

TEST_P(AttentionShapes, BackwardMatchesNaiveF64Reference) {
  const AttnShape s = GetParam();
  const Pass p = forward_backward(s, 12);
  RefResult ref = reference_attention(p.qkv, s, &p.dout);
  EXPECT_EQ(count_off(p.dqkv.data<float>(), ref.dqkv, 2e-5, 1e-4, "dqkv"), 0);
}

// Finite differences probe every element, so the multi-tile case is kept narrow.
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
  Tensor out = make_out(s), lse = make_lse(s);
  auto loss = [&] {
    attention_forward(out, lse, qkv, s);
    return project(out, proj);
  };
  loss();
  Tensor dqkv = Tensor::zeros(qkv.shape(), DType::f32);
  attention_backward(dqkv, proj, qkv, out, lse, s);

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

// A later position, however large its q/k/v (scores past f32 range included), leaves every
// earlier row bitwise unchanged: masked scores contribute exactly 0 and make no NaN.
TEST_P(AttentionShapes, IsCausal) {
  const AttnShape s = GetParam();
  if (s.T == 1) GTEST_SKIP() << "no later position";
  Tensor qkv = random_tensor({s.B, s.T, s.qkv_width()}, 31);
  Tensor out0 = make_out(s), out1 = make_out(s), lse0 = make_lse(s), lse1 = make_lse(s);
  attention_forward(out0, lse0, qkv, s);
  const int64_t W = s.qkv_width(), HD = s.n_head * s.head_dim, H = s.n_head;
  for (float bump : {0.5f, 1e20f})
    for (int64_t t : {int64_t{1}, s.T / 2, s.T - 1}) {
      Tensor perturbed = qkv.clone(MemTag::other);
      const int64_t b = s.B - 1;
      for (int64_t c = 0; c < W; ++c) perturbed.data<float>()[(b * s.T + t) * W + c] += bump;
      attention_forward(out1, lse1, perturbed, s);
      const float* a = out0.data<float>();
      const float* o = out1.data<float>();
      for (int64_t tt = 0; tt < t; ++tt) {
        EXPECT_EQ(0, std::memcmp(a + (b * s.T + tt) * HD, o + (b * s.T + tt) * HD, HD * sizeof(float)))
            << "out at " << tt << " changed by input at " << t << " (+" << bump << ")";
        for (int64_t h = 0; h < H; ++h)
          EXPECT_EQ(lse0.data<float>()[(b * H + h) * s.T + tt], lse1.data<float>()[(b * H + h) * s.T + tt]);
      }
      if (bump < 1.f) {
        EXPECT_NE(0, std::memcmp(a + (b * s.T + t) * HD, o + (b * s.T + t) * HD, HD * sizeof(float)))
            << "out at " << t << " ignores its own input";
      }
      // Other batch rows are untouched by this batch's input.
      if (s.B > 1) {
        EXPECT_EQ(0, std::memcmp(a, o, s.T * HD * sizeof(float)));
      }
    }
}

TEST_P(AttentionShapes, BackwardAccumulates) {
  const AttnShape s = GetParam();
  const Pass p = forward_backward(s, 41);
  const Tensor &qkv = p.qkv, &dout = p.dout, &out = p.out, &lse = p.lse, &g = p.dqkv;
  Tensor twice = Tensor::zeros(qkv.shape(), DType::f32);
  attention_backward(twice, dout, qkv, out, lse, s);
  attention_backward(twice, dout, qkv, out, lse, s);
  Tensor init = random_tensor(qkv.shape(), 43);
  Tensor acc = init.clone(MemTag::other);
  attention_backward(acc, dout, qkv, out, lse, s);
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

// GradWrite::overwrite writes exactly what a zeroed dqkv accumulates, whatever dqkv held
// (NaN included), in every column (q of each head, k and v of each kv head).
TEST_P(AttentionShapes, OverwrittenDqkvEqualsAZeroedAccumulation) {
  const AttnShape s = GetParam();
  const Pass p = forward_backward(s, 44);
  Tensor garbage = random_tensor(p.qkv.shape(), 46);
  for (int64_t i = 0; i < garbage.numel(); i += 5) garbage.data<float>()[i] = std::nanf("");
  attention_backward(garbage, p.dout, p.qkv, p.out, p.lse, s, GradWrite::overwrite);
  EXPECT_TRUE(bitwise_equal(garbage, p.dqkv));
}

// bf16 q/k/v and out are read (and forward's out written) directly, each tile widened as it
// is used: bitwise what the kernels give on f32 copies widened from them.
TEST_P(AttentionShapes, Bf16InputsGiveWhatTheirWidenedCopiesGive) {
  const AttnShape s = GetParam();
  auto to = [](const Tensor& t, DType dt) {
    Tensor c = Tensor::empty(t.shape(), dt);
    convert(c, t);
    return c;
  };
  const Tensor qkv_h = to(random_tensor({s.B, s.T, s.qkv_width()}, 61), DType::bf16), qkv_w = to(qkv_h, DType::f32);
  Tensor out_h = Tensor::empty({s.B, s.T, s.n_head * s.head_dim}, DType::bf16), out_w = make_out(s);
  Tensor lse_h = make_lse(s), lse_w = make_lse(s);
  attention_forward(out_h, lse_h, qkv_h, s);
  attention_forward(out_w, lse_w, qkv_w, s);
  EXPECT_TRUE(bitwise_equal(out_h, to(out_w, DType::bf16)));
  EXPECT_TRUE(bitwise_equal(lse_h, lse_w));

  const Tensor dout = random_tensor({s.B, s.T, s.n_head * s.head_dim}, 62);
  Tensor dqkv_h = random_tensor(qkv_w.shape(), 63), dqkv_w = dqkv_h.clone(MemTag::workspace);
  attention_backward(dqkv_h, dout, qkv_h, out_h, lse_h, s);
  attention_backward(dqkv_w, dout, qkv_w, to(out_h, DType::f32), lse_w, s);
  EXPECT_TRUE(bitwise_equal(dqkv_h, dqkv_w));
}

TEST_P(AttentionShapes, DeterministicAcrossCallsAndThreadCounts) {
  const AttnShape s = GetParam();
  Tensor qkv = random_tensor({s.B, s.T, s.qkv_width()}, 51);
  Tensor dout = random_tensor({s.B, s.T, s.n_head * s.head_dim}, 52);
  const int saved = omp_get_max_threads();
  constexpr int kRuns = 4;
  const int threads[kRuns] = {1, 1, 2, 3};
  Tensor out[kRuns], lse[kRuns], dqkv[kRuns];
  for (int r = 0; r < kRuns; ++r) {
    omp_set_num_threads(threads[r]);
    out[r] = make_out(s);
    lse[r] = make_lse(s);
    dqkv[r] = Tensor::zeros(qkv.shape(), DType::f32);
    attention_forward(out[r], lse[r], qkv, s);
    attention_backward(dqkv[r], dout, qkv, out[r], lse[r], s);
  }
  omp_set_num_threads(saved);
  for (int r = 1; r < kRuns; ++r) {
    EXPECT_TRUE(bitwise_equal(out[0], out[r])) << threads[r] << " threads, run " << r;
    EXPECT_TRUE(bitwise_equal(lse[0], lse[r])) << threads[r] << " threads, run " << r;
    EXPECT_TRUE(bitwise_equal(dqkv[0], dqkv[r])) << threads[r] << " threads, run " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Attention, AttentionShapes, ::testing::ValuesIn(kShapes),
                         [](const auto& info) { return name(info.param); });
INSTANTIATE_TEST_SUITE_P(Attention, AttentionGrad, ::testing::ValuesIn(kGradShapes),
                         [](const auto& info) { return name(info.param); });

TEST(Attention, LargeLogitsStayFinite) {
  // Max subtraction: scores of several hundred must not overflow exp, in forward or backward.
  for (const AttnShape s : {AttnShape{1, 5, 1, 1, 4}, AttnShape{1, 130, 2, 1, 4}}) {
    Tensor qkv = random_tensor({s.B, s.T, s.qkv_width()}, 61, 30.f);
    Tensor dout = random_tensor({s.B, s.T, s.n_head * s.head_dim}, 62);
    Tensor out = make_out(s), lse = make_lse(s);
    attention_forward(out, lse, qkv, s);
    RefResult ref = reference_attention(qkv, s, &dout);
    for (int64_t i = 0; i < out.numel(); ++i) {
      ASSERT_TRUE(std::isfinite(out.data<float>()[i]));
      EXPECT_NEAR(out.data<float>()[i], ref.out[i], 1e-3 + 1e-4 * std::fabs(ref.out[i]));
    }
    for (int64_t i = 0; i < lse.numel(); ++i) EXPECT_NEAR(lse.data<float>()[i], ref.lse[i], 1e-4 * std::fabs(ref.lse[i]));
    Tensor dqkv = Tensor::zeros(qkv.shape(), DType::f32);
    attention_backward(dqkv, dout, qkv, out, lse, s);
    for (int64_t i = 0; i < dqkv.numel(); ++i) ASSERT_TRUE(std::isfinite(dqkv.data<float>()[i])) << i;
  }
}

TEST(Attention, RejectsBadShapes) {
  const AttnShape s{2, 7, 4, 2, 8};
  Tensor qkv = random_tensor({s.B, s.T, s.qkv_width()}, 71);
  Tensor out = make_out(s), lse = make_lse(s);
  AttnShape bad_group = s;
  bad_group.n_kv_head = 3;
  EXPECT_THROW(attention_forward(out, lse, qkv, bad_group), Error);
  Tensor short_lse = Tensor::zeros({s.B, s.n_head, s.T - 1}, DType::f32);
  EXPECT_THROW(attention_forward(out, short_lse, qkv, s), Error);
  Tensor bf16_lse = Tensor::zeros({s.B, s.n_head, s.T}, DType::bf16);  // lse is always f32
  EXPECT_THROW(attention_forward(out, bf16_lse, qkv, s), Error);
  Tensor wrong_qkv = random_tensor({s.B, s.T, s.qkv_width() + 8}, 72);
  EXPECT_THROW(attention_forward(out, lse, wrong_qkv, s), Error);
  attention_forward(out, lse, qkv, s);
  Tensor dout = random_tensor(out.shape(), 73);
  Tensor f64_dqkv = Tensor::zeros({s.B, s.T, s.qkv_width()}, DType::f64);
  EXPECT_THROW(attention_backward(f64_dqkv, dout, qkv, out, lse, s), Error);
  Tensor dqkv = Tensor::zeros({s.B, s.T, s.qkv_width()}, DType::f32);
  Tensor short_out = Tensor::zeros({s.B, s.T - 1, s.n_head * s.head_dim}, DType::f32);
  EXPECT_THROW(attention_backward(dqkv, dout, qkv, short_out, lse, s), Error);
  EXPECT_THROW(attention_backward(dqkv, dout, qkv, out, short_lse, s), Error);
  Tensor aliased = qkv;
  EXPECT_THROW(attention_backward(aliased, dout, qkv, out, lse, s), Error);
}

}  // namespace
}  // namespace zt
