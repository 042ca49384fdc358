// Gated attention's sigmoid gate and the WorkerTransformer's causal depthwise conv and worker
// row gather/scatter: forward against f64 references, backward against finite differences,
// accumulation and causality.
#include "tests/core/test_kernels_util.h"

namespace zt {
namespace {

using namespace zt::testing;

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

TEST(KernelSigmoidGate, ForwardMatchesTheFormulaAndBackwardFiniteDifferences) {
  Tensor x = random_tensor({5, 12}, 1), g = random_tensor({5, 12}, 2, 3.f), y = Tensor::empty({5, 12}, DType::f32);
  sigmoid_gate_forward(y, x, g);
  std::vector<double> want(x.numel());
  for (int64_t i = 0; i < x.numel(); ++i) want[i] = f32(x)[i] * sigmoid(f32(g)[i]);
  expect_matches(y, want, 1e-5, 1e-6, "gate");

  Tensor proj = random_tensor({5, 12}, 3);
  Tensor dx = random_tensor({5, 12}, 4), dg = random_tensor({5, 12}, 5);
  const Tensor dx0 = copy_of(dx), dg0 = copy_of(dg);
  sigmoid_gate_backward(dx, dg, proj, x, g);
  axpy(dx, -1.f, dx0);  // what the call added
  axpy(dg, -1.f, dg0);
  auto loss = [&] {
    sigmoid_gate_forward(y, x, g);
    return project(y, proj);
  };
  expect_grad_close(loss, x, dx, "gate dinp");
  expect_grad_close(loss, g, dg, "gate dgate");
}

// f64 reference: out[b,t,c] = bias[c] + sum_j w[c,j] x[b, t-(K-1)+j, c].
std::vector<double> conv_ref(const Tensor& x, const Tensor& w, const Tensor* bias, int64_t B, int64_t T) {
  const int64_t C = x.dim(1), K = w.numel() / C;
  std::vector<double> out(B * T * C);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c) {
        double s = bias ? f32(*bias)[c] : 0.0;
        for (int64_t j = 0; j < K; ++j) {
          const int64_t src = t - (K - 1) + j;
          if (src >= 0) s += double(f32(w)[c * K + j]) * f32(x)[(b * T + src) * C + c];
        }
        out[(b * T + t) * C + c] = s;
      }
  return out;
}

TEST(KernelCausalConv, ForwardMatchesTheReferenceWithAndWithoutBias) {
  const int64_t B = 2, T = 9, C = 20;  // C not a multiple of the kernel's channel block
  for (int64_t K : {1, 3, 4, 12}) {     // 12 > T: taps past the start read zeros
    Tensor x = random_tensor({B * T, C}, 1), w = random_tensor({C, 1, K}, 2), b = random_tensor({C}, 3);
    Tensor y = Tensor::empty({B * T, C}, DType::f32);
    causal_conv1d_forward(y, x, w, &b, T);
    expect_matches(y, conv_ref(x, w, &b, B, T), 1e-5, 1e-5, "conv K=" + std::to_string(K));
    causal_conv1d_forward(y, x, w, nullptr, T);
    expect_matches(y, conv_ref(x, w, nullptr, B, T), 1e-5, 1e-5, "conv no bias K=" + std::to_string(K));
  }
}

TEST(KernelCausalConv, BackwardMatchesFiniteDifferencesAndAccumulates) {
  const int64_t B = 2, T = 7, C = 18, K = 4;
  Tensor x = random_tensor({B * T, C}, 1), w = random_tensor({C, 1, K}, 2), b = random_tensor({C}, 3);
  Tensor proj = random_tensor({B * T, C}, 4), y = Tensor::empty({B * T, C}, DType::f32);
  Tensor dx = Tensor::zeros({B * T, C}, DType::f32), dw = Tensor::zeros({C, 1, K}, DType::f32),
         db = Tensor::zeros({C}, DType::f32);
  causal_conv1d_backward(dx, dw, &db, proj, x, w, T);
  auto loss = [&] {
    causal_conv1d_forward(y, x, w, &b, T);
    return project(y, proj);
  };
  expect_grad_close(loss, x, dx, "conv dinp");
  expect_grad_close(loss, w, dw, "conv dweight");
  expect_grad_close(loss, b, db, "conv dbias");
  // A second call adds the same again.
  const Tensor dw1 = copy_of(dw);
  causal_conv1d_backward(dx, dw, &db, proj, x, w, T);
  axpy(dw, -2.f, dw1);
  EXPECT_LT(sum_squares(dw), 1e-10 * sum_squares(dw1));
}

TEST(KernelCausalConv, OutputsNeverReadLaterRowsOrOtherSequences) {
  const int64_t B = 2, T = 8, C = 5, K = 3;
  Tensor x = random_tensor({B * T, C}, 1), w = random_tensor({C, 1, K}, 2);
  Tensor y0 = Tensor::empty({B * T, C}, DType::f32), y1 = Tensor::empty({B * T, C}, DType::f32);
  causal_conv1d_forward(y0, x, w, nullptr, T);
  for (int64_t t = 0; t < T; ++t) {
    Tensor xp = copy_of(x);
    f32(xp)[t * C + 2] += 1.f;  // sequence 0, row t, channel 2
    causal_conv1d_forward(y1, xp, w, nullptr, T);
    for (int64_t r = 0; r < B * T; ++r)
      for (int64_t c = 0; c < C; ++c) {
        const bool may_change = r >= t && r < T && r <= t + K - 1 && c == 2;
        if (!may_change) {
          EXPECT_EQ(f32(y1)[r * C + c], f32(y0)[r * C + c]) << "row " << r << " after t " << t;
        }
      }
  }
}

TEST(KernelWorkerRows, GatherTakesEveryKthRowEndingEachGroupAndScatterPutsThemBack) {
  const int64_t B = 2, T = 10, C = 3, k = 4;  // W = 2 per sequence: rows 3 and 7; 8, 9 are none
  Tensor x = random_tensor({B * T, C}, 1), w = Tensor::empty({B * 2, C}, DType::f32);
  gather_worker_rows(w, x, T, k);
  const int64_t rows[] = {3, 7, 13, 17};
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t c = 0; c < C; ++c) EXPECT_EQ(f32(w)[i * C + c], f32(x)[rows[i] * C + c]);
  Tensor y = copy_of(x);
  fill(w, 5.f);
  scatter_worker_rows(y, w, T, k);
  for (int64_t r = 0; r < B * T; ++r) {
    const bool worker = r % T % k == k - 1 && r % T < 8;
    for (int64_t c = 0; c < C; ++c) EXPECT_EQ(f32(y)[r * C + c], worker ? 5.f : f32(x)[r * C + c]) << r;
  }
}

}  // namespace
}  // namespace zt
