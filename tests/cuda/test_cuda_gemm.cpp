// matmul, linear_forward and linear_backward on cuBLASLt against the CPU GEMMs: exact fp32 (no
// TF32) for f32 operands, fp32 accumulation of bf16 operands, beta = 1 accumulation into f32
// gradients in place, the bias epilogue.
#include <cmath>

#include "tests/cuda/cuda_test_util.h"
#include "tests/support/scoped_env_var.h"

namespace zt::testing {
namespace {

TEST(CudaGemm, MatmulInEveryTransposeWithAlphaAndBeta) {
  ZT_REQUIRE_CUDA();
  const int64_t M = 67, N = 45, K = 129;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const Tensor a = ta ? random_cpu({K, M}, 1) : random_cpu({M, K}, 1);
      const Tensor b = tb ? random_cpu({N, K}, 2) : random_cpu({K, N}, 2);
      Tensor out = random_cpu({M, N}, 3), gout = to_gpu(out);
      const MatmulOptions o{.trans_a = ta, .trans_b = tb, .alpha = 0.5f, .beta = 1.f};
      matmul(out, a, b, o);
      matmul(gout, to_gpu(a), to_gpu(b), o);
      expect_close(out, gout, kF32Tol, "matmul trans " + std::to_string(ta) + std::to_string(tb));
    }
}

// linear_forward on the GPU against the CPU: into an f32 out with the bias, and into a bf16
// out with the bias or without.
void expect_linear_forward_matches_cpu(const Tensor& inp, const Tensor& w, const Tensor& bias, bool bf16_out_bias,
                                       double tol, const std::string& tag) {
  const int64_t N = inp.dim(0), OC = w.dim(0);
  const Tensor ginp = to_gpu(inp), gw = to_gpu(w), gbias = to_gpu(bias);
  Tensor out = Tensor::empty({N, OC}, DType::f32), gout = to_gpu(out);
  linear_forward(out, inp, w, &bias);
  linear_forward(gout, ginp, gw, &gbias);
  expect_close(out, gout, tol, "linear_forward" + tag);
  Tensor outb = Tensor::empty({N, OC}, DType::bf16),
         goutb = Tensor::empty({N, OC}, DType::bf16, MemTag::other, Device::cuda(0));
  linear_forward(outb, inp, w, bf16_out_bias ? &bias : nullptr);
  linear_forward(goutb, ginp, gw, bf16_out_bias ? &gbias : nullptr);
  expect_close(outb, goutb, kBf16Tol, "linear_forward bf16 out" + tag);
}

TEST(CudaLinear, ForwardAndBackwardInF32AndBf16) {
  ZT_REQUIRE_CUDA();
  const int64_t N = 75, C = 96, OC = 131;
  for (DType wtype : {DType::f32, DType::bf16}) {
    const std::string tag = std::string(" weights ") + std::string(dtype_name(wtype));
    // bf16 GEMMs accumulate in another order than the CPU's: a few bf16 ulps of the sum's scale.
    const double tol = wtype == DType::f32 ? kF32Tol : 1e-4;
    const Tensor inp = random_cpu({N, C}, 10), w = random_cpu({OC, C}, 11, 0.2f, wtype), bias = random_cpu({OC}, 12);
    const Tensor ginp = to_gpu(inp), gw = to_gpu(w);
    expect_linear_forward_matches_cpu(inp, w, bias, false, tol, tag);

    const Tensor dout = random_cpu({N, OC}, 13);
    Tensor dinp = random_cpu({N, C}, 14), dw = random_cpu({OC, C}, 15), db = random_cpu({OC}, 16);
    Tensor gdinp = to_gpu(dinp), gdw = to_gpu(dw), gdb = to_gpu(db);
    linear_backward(&dinp, dw, &db, dout, inp, w);
    linear_backward(&gdinp, gdw, &gdb, to_gpu(dout), ginp, gw);
    expect_close(dinp, gdinp, tol, "linear dinp" + tag);
    expect_close(dw, gdw, tol, "linear dweight" + tag);
    expect_close(db, gdb, kF32Tol, "linear dbias" + tag);
    linear_backward(nullptr, dw, nullptr, dout, inp, w);  // the first layer: no dinp
    linear_backward(nullptr, gdw, nullptr, to_gpu(dout), ginp, gw);
    expect_close(dw, gdw, tol, "linear dweight, second call" + tag);
    // Both gradients overwritten (beta 0): what each held, NaN in the GPU's, is not read.
    Tensor nan_dinp = random_cpu({N, C}, 17), nan_dw = random_cpu({OC, C}, 18);
    for (int64_t i = 0; i < N * C; i += 3) nan_dinp.data<float>()[i] = std::nanf("");
    for (int64_t i = 0; i < OC * C; i += 3) nan_dw.data<float>()[i] = std::nanf("");
    gdinp = to_gpu(nan_dinp), gdw = to_gpu(nan_dw);
    linear_backward(&dinp, dw, nullptr, dout, inp, w, GradWrite::overwrite, GradWrite::overwrite);
    linear_backward(&gdinp, gdw, nullptr, to_gpu(dout), ginp, gw, GradWrite::overwrite, GradWrite::overwrite);
    expect_close(dinp, gdinp, tol, "linear dinp, overwritten" + tag);
    expect_close(dw, gdw, tol, "linear dweight, overwritten" + tag);
  }
}

// With ZT_CUDA_LINEAR_OUT=aligned, rows of a misaligned width (GPT-2's head: 50257 floats) go
// through aligned workspace chunks: here two, the second partial, with the bias added, into an
// f32 and a bf16 out. (ForwardAndBackwardInF32AndBf16 covers one chunk under either setting.)
TEST(CudaLinear, MisalignedRowsInSeveralChunksMatchTheCpu) {
  ZT_REQUIRE_CUDA();
  ScopedEnvVar aligned("ZT_CUDA_LINEAR_OUT", "aligned");
  const int64_t C = 48, OC = 50001;
  const DeviceOutRows plan = device_out_rows(int64_t{1} << 20, OC);
  ASSERT_EQ(plan.stride, 50004);
  ASSERT_LT(plan.chunk_rows, int64_t{1} << 20);
  const int64_t N = plan.chunk_rows + 37;
  for (DType wtype : {DType::f32, DType::bf16}) {
    const std::string tag = std::string(" weights ") + std::string(dtype_name(wtype));
    const double tol = wtype == DType::f32 ? kF32Tol : 1e-4;
    const Tensor inp = random_cpu({N, C}, 20), w = random_cpu({OC, C}, 21, 0.2f, wtype), bias = random_cpu({OC}, 22);
    expect_linear_forward_matches_cpu(inp, w, bias, true, tol, tag);
  }
}

}  // namespace
}  // namespace zt::testing
