// Mixed-precision activations: every kernel that reads or writes a saved activation accepts it
// in bf16 or f16 and must compute exactly what the f32 kernel computes on the widened inputs,
// with outputs rounded as convert() rounds them (bitwise), and leave f32 operands alone.
#include "tests/core/test_kernels_util.h"

namespace zt {
namespace {

using namespace zt::testing;

class KernelLowpActivations : public ::testing::TestWithParam<DType> {
 protected:
  DType dt() const { return GetParam(); }
  // t rounded to the parameter dtype, and that rounding widened back to f32.
  std::pair<Tensor, Tensor> rounded(const Tensor& t) const {
    Tensor low = Tensor::empty(t.shape(), dt()), wide = Tensor::empty(t.shape(), DType::f32);
    convert(low, t);
    convert(wide, low);
    return {low, wide};
  }
  Tensor low_of(const Tensor& f) const {
    Tensor low = Tensor::empty(f.shape(), dt());
    convert(low, f);
    return low;
  }
  Tensor empty_low(const Shape& s) const { return Tensor::empty(s, dt()); }
};

constexpr int64_t N = 6, C = 16;

TEST_P(KernelLowpActivations, NormsAndMlpActivationsRoundWhatTheyStoreAndWidenWhatTheyRead) {
  const Tensor x = random_tensor({N, C}, 1), w = random_tensor({C}, 2), b = random_tensor({C}, 3);
  Tensor mean = Tensor::empty({N}, DType::f32), rstd = Tensor::empty({N}, DType::f32);
  Tensor want = Tensor::empty({N, C}, DType::f32), got = empty_low({N, C});
  layernorm_forward(want, mean, rstd, x, w, &b, 1e-5f);
  layernorm_forward(got, mean, rstd, x, w, &b, 1e-5f);
  EXPECT_TRUE(bitwise_equal(got, low_of(want))) << "layernorm";
  rmsnorm_forward(want, rstd, x, w, 1e-5f);
  rmsnorm_forward(got, rstd, x, w, 1e-5f);
  EXPECT_TRUE(bitwise_equal(got, low_of(want))) << "rmsnorm";

  // GELU and SwiGLU read a rounded pre-activation and store a rounded output.
  const auto [h_low, h_wide] = rounded(random_tensor({N, 2 * C}, 4));
  Tensor g_want = Tensor::empty({N, 2 * C}, DType::f32), g_got = empty_low({N, 2 * C});
  gelu_forward(g_want, h_wide);
  gelu_forward(g_got, h_low);
  EXPECT_TRUE(bitwise_equal(g_got, low_of(g_want))) << "gelu";
  Tensor s_want = Tensor::empty({N, C}, DType::f32), s_got = empty_low({N, C});
  swiglu_forward(s_want, h_wide);
  swiglu_forward(s_got, h_low);
  EXPECT_TRUE(bitwise_equal(s_got, low_of(s_want))) << "swiglu";

  const Tensor dg = random_tensor({N, 2 * C}, 5), ds = random_tensor({N, C}, 6);
  Tensor d_want = Tensor::zeros({N, 2 * C}, DType::f32), d_got = Tensor::zeros({N, 2 * C}, DType::f32);
  gelu_backward(d_want, dg, h_wide);
  gelu_backward(d_got, dg, h_low);
  EXPECT_TRUE(bitwise_equal(d_got, d_want)) << "gelu backward";
  d_want.zero_();
  d_got.zero_();
  swiglu_backward(d_want, ds, h_wide);
  swiglu_backward(d_got, ds, h_low);
  EXPECT_TRUE(bitwise_equal(d_got, d_want)) << "swiglu backward";
}

TEST_P(KernelLowpActivations, LinearAndRopeMatchTheF32KernelsOnWidenedInputs) {
  const AttnShape s{2, 5, 4, 2, 4};  // B, T, H, KVH, D: grouped-query attention
  const int64_t rows = s.B * s.T, width = s.qkv_width();
  const Tensor table = rope_table(s.T, s.head_dim, 10000.f);

  // The qkv projection stores its output rounded; RoPE rotates it in place.
  const Tensor x = random_tensor({rows, C}, 7), bias = random_tensor({width}, 8);
  const auto [w_low, w_wide] = rounded(random_tensor({width, C}, 9));
  Tensor qkv_want = Tensor::empty({rows, width}, DType::f32), qkv_got = empty_low({rows, width});
  linear_forward(qkv_want, x, w_low, &bias);
  linear_forward(qkv_got, x, w_low, &bias);
  EXPECT_TRUE(bitwise_equal(qkv_got, low_of(qkv_want))) << "linear";
  Tensor rot_want = Tensor::empty({rows, width}, DType::f32);
  convert(rot_want, qkv_got);
  rope_forward(rot_want, table, s);
  rope_forward(qkv_got, table, s);
  EXPECT_TRUE(bitwise_equal(qkv_got, low_of(rot_want))) << "rope";
}

// Apart from the linear above so that it runs where bf16 GEMMs are unavailable. T = 70 spans
// two of the kernel's tiles.
TEST_P(KernelLowpActivations, AttentionMatchesTheF32KernelOnWidenedInputs) {
  const AttnShape s{2, 70, 4, 2, 8};  // B, T, H, KVH, D: grouped-query attention
  const int64_t rows = s.B * s.T, width = s.qkv_width(), out = s.n_head * s.head_dim;
  const auto [qkv_got, qkv_wide] = rounded(random_tensor({rows, width}, 11));
  // Attention reads rounded q/k/v and stores a rounded output (its log-sum-exp stays f32);
  // backward reads the rounded q/k/v and output.
  Tensor o_want = Tensor::empty({rows, out}, DType::f32), o_got = empty_low({rows, out});
  Tensor lse_want = Tensor::empty({s.B, s.n_head, s.T}, DType::f32), lse_got = Tensor::empty(lse_want.shape(), DType::f32);
  attention_forward(o_want, lse_want, qkv_wide, s);
  attention_forward(o_got, lse_got, qkv_got, s);
  EXPECT_TRUE(bitwise_equal(o_got, low_of(o_want))) << "attention out";
  EXPECT_TRUE(bitwise_equal(lse_got, lse_want)) << "attention lse";

  const Tensor dout = random_tensor({rows, out}, 10);
  Tensor o_wide = Tensor::empty(o_got.shape(), DType::f32);
  convert(o_wide, o_got);
  Tensor dq_want = Tensor::zeros({rows, width}, DType::f32), dq_got = Tensor::zeros({rows, width}, DType::f32);
  attention_backward(dq_want, dout, qkv_wide, o_wide, lse_want, s);
  attention_backward(dq_got, dout, qkv_got, o_got, lse_got, s);
  EXPECT_TRUE(bitwise_equal(dq_got, dq_want)) << "attention backward";
}

INSTANTIATE_TEST_SUITE_P(DTypes, KernelLowpActivations, ::testing::Values(DType::bf16, DType::f16),
                         [](const auto& info) { return info.param == DType::bf16 ? "bf16" : "f16"; });

}  // namespace
}  // namespace zt
