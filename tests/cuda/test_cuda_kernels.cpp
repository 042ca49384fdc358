// Every elementwise, norm, loss, embedding and optimizer kernel on the GPU against the CPU
// kernel on the same random inputs: f32 within 1e-5 (relative to the tensor's scale), bf16
// outputs within a bf16 rounding. Odd sizes throughout, so no kernel relies on a multiple of a
// block or a vector width.
#include <cstring>

#include "tests/cuda/cuda_test_util.h"

namespace zt::testing {
namespace {

TEST(CudaElementwise, FillAxpyScaleAddAndSumSquaresMatchTheCpu) {
  ZT_REQUIRE_CUDA();
  const int64_t n = 100003;
  const Tensor x = random_cpu({n}, 1), y0 = random_cpu({n}, 2);
  Tensor y = y0.clone(MemTag::other), gy = to_gpu(y0);
  const Tensor gx = to_gpu(x);
  axpy(y, 0.75f, x);
  axpy(gy, 0.75f, gx);
  expect_close(y, gy, kF32Tol, "axpy");
  scale_inplace(y, -1.5f);
  scale_inplace(gy, -1.5f);
  expect_close(y, gy, kF32Tol, "scale_inplace");
  const Tensor xb = random_cpu({n}, 3, 1.f, DType::bf16);
  add_inplace(y, xb);
  add_inplace(gy, to_gpu(xb));
  expect_close(y, gy, kF32Tol, "add_inplace bf16");
  EXPECT_NEAR(sum_squares(gy), sum_squares(y), 1e-9 * sum_squares(y));
  fill(gy, 2.5f);
  EXPECT_EQ(sum_squares(gy), 2.5 * 2.5 * static_cast<double>(n));
}

// The device totals take the f64 sums in sum_squares' fixed order and stay on the device
// until read: two accumulations add up, and no call waits for the GPU.
TEST(CudaElementwise, SumAccumulateMatchesTheCpuWithoutWaiting) {
  ZT_REQUIRE_CUDA();
  const Tensor x = random_cpu({100003}, 7, 3.f);
  const Tensor gx = to_gpu(x);
  Tensor sum = Tensor::zeros({1}, DType::f64), squares = Tensor::zeros({1}, DType::f64);
  Tensor gsum = to_gpu(sum), gsquares = to_gpu(squares);
  const int64_t waits = host_waits();
  for (int i = 0; i < 2; ++i) {
    sum_accumulate(sum, x);
    sum_accumulate(gsum, gx);
    sum_squares_accumulate(squares, x);
    sum_squares_accumulate(gsquares, gx);
  }
  EXPECT_EQ(host_waits(), waits);
  const double s = to_cpu(gsum).data<double>()[0], q = to_cpu(gsquares).data<double>()[0];
  EXPECT_NEAR(s, sum.data<double>()[0], 1e-9 * std::fabs(q));  // |sum| <= sqrt(n * q): scale by q
  EXPECT_NEAR(q, squares.data<double>()[0], 1e-12 * squares.data<double>()[0]);
  EXPECT_EQ(q, 2 * sum_squares(gx));  // the same fixed order as sum_squares
}

TEST(CudaElementwise, ConversionsRoundLikeTheCpu) {
  ZT_REQUIRE_CUDA();
  const Tensor x = random_cpu({4099}, 4, 300.f);
  for (DType to : {DType::bf16, DType::f16}) {
    Tensor want = Tensor::empty(x.shape(), to), got = Tensor::empty(x.shape(), to, MemTag::other, Device::cuda(0));
    convert(want, x);
    convert(got, to_gpu(x));
    const Tensor back = to_cpu(got);
    EXPECT_EQ(std::memcmp(back.raw(), want.raw(), want.nbytes()), 0) << "f32 -> " << dtype_name(to);
    Tensor wide_want = Tensor::empty(x.shape(), DType::f32), wide = Tensor::empty(x.shape(), DType::f32, MemTag::other,
                                                                                  Device::cuda(0));
    convert(wide_want, want);
    convert(wide, got);
    expect_close(wide_want, wide, 0, std::string("widen ") + std::string(dtype_name(to)));
  }
}

TEST(CudaActivation, GeluSwigluAndSigmoidGateForwardAndBackward) {
  ZT_REQUIRE_CUDA();
  const int64_t N = 37, F = 131;
  for (DType in_type : {DType::f32, DType::bf16}) {
    const std::string tag = std::string(" in ") + std::string(dtype_name(in_type));
    const Tensor inp = random_cpu({N, 2 * F}, 5, 2.f, in_type), dout = random_cpu({N, 2 * F}, 6);
    Tensor out = Tensor::empty({N, 2 * F}, DType::f32), gout = to_gpu(out);
    gelu_forward(out, inp);
    gelu_forward(gout, to_gpu(inp));
    expect_close(out, gout, kF32Tol, "gelu_forward" + tag);
    Tensor dinp = random_cpu({N, 2 * F}, 7), gdinp = to_gpu(dinp);
    gelu_backward(dinp, dout, inp);
    gelu_backward(gdinp, to_gpu(dout), to_gpu(inp));
    expect_close(dinp, gdinp, kF32Tol, "gelu_backward" + tag);

    Tensor sw = Tensor::empty({N, F}, DType::bf16), gsw = Tensor::empty({N, F}, DType::bf16, MemTag::other,
                                                                        Device::cuda(0));
    swiglu_forward(sw, inp);
    swiglu_forward(gsw, to_gpu(inp));
    expect_close(sw, gsw, kBf16Tol, "swiglu_forward bf16 out" + tag);
    const Tensor dsw = random_cpu({N, F}, 8);
    Tensor dsi = random_cpu({N, 2 * F}, 9), gdsi = to_gpu(dsi);
    swiglu_backward(dsi, dsw, inp);
    swiglu_backward(gdsi, to_gpu(dsw), to_gpu(inp));
    expect_close(dsi, gdsi, kF32Tol, "swiglu_backward" + tag);

    const Tensor gate = random_cpu({N, 2 * F}, 10, 1.f, in_type);
    Tensor go = Tensor::empty({N, 2 * F}, DType::f32), ggo = to_gpu(go);
    sigmoid_gate_forward(go, inp, gate);
    sigmoid_gate_forward(ggo, to_gpu(inp), to_gpu(gate));
    expect_close(go, ggo, kF32Tol, "sigmoid_gate_forward" + tag);
    Tensor di = random_cpu({N, 2 * F}, 11), dg = random_cpu({N, 2 * F}, 12);
    Tensor gdi = to_gpu(di), gdg = to_gpu(dg);
    sigmoid_gate_backward(di, dg, dout, inp, gate);
    sigmoid_gate_backward(gdi, gdg, to_gpu(dout), to_gpu(inp), to_gpu(gate));
    expect_close(di, gdi, kF32Tol, "sigmoid_gate dinp" + tag);
    expect_close(dg, gdg, kF32Tol, "sigmoid_gate dgate" + tag);
  }
}

TEST(CudaNorm, LayerNormAndRmsNormForwardAndBackward) {
  ZT_REQUIRE_CUDA();
  for (int64_t C : {int64_t{1}, int64_t{77}, int64_t{768}, int64_t{1031}}) {
    const int64_t N = 301;
    const std::string tag = " C=" + std::to_string(C);
    const Tensor inp = random_cpu({N, C}, 20, 3.f), w = random_cpu({C}, 21), b = random_cpu({C}, 22);
    const Tensor dout = random_cpu({N, C}, 23);
    Tensor out = Tensor::empty({N, C}, DType::f32), mean = Tensor::empty({N}, DType::f32),
           rstd = Tensor::empty({N}, DType::f32);
    Tensor gout = to_gpu(out), gmean = to_gpu(mean), grstd = to_gpu(rstd);
    layernorm_forward(out, mean, rstd, inp, w, &b, 1e-5f);
    const Tensor gb = to_gpu(b), gw = to_gpu(w), ginp = to_gpu(inp), gdout = to_gpu(dout);
    layernorm_forward(gout, gmean, grstd, ginp, gw, &gb, 1e-5f);
    expect_close(out, gout, kF32Tol, "layernorm out" + tag);
    expect_close(mean, gmean, kF32Tol, "layernorm mean" + tag);
    expect_close(rstd, grstd, kF32Tol, "layernorm rstd" + tag);
    Tensor dinp = random_cpu({N, C}, 24), dw = random_cpu({C}, 25), db = random_cpu({C}, 26);
    Tensor gdinp = to_gpu(dinp), gdw = to_gpu(dw), gdb = to_gpu(db);
    layernorm_backward(dinp, dw, &db, dout, inp, w, mean, rstd);
    layernorm_backward(gdinp, gdw, &gdb, gdout, ginp, gw, gmean, grstd);
    // C=1 has zero variance: dinp adds rstd = 1/sqrt(eps) ~ 316 times the rounding of g*w,
    // which FMA contraction (compiler-dependent on both sides) changes.
    expect_close(dinp, gdinp, C == 1 ? 1e-4 : kF32Tol, "layernorm dinp" + tag);
    expect_close(dw, gdw, kF32Tol, "layernorm dweight" + tag);
    expect_close(db, gdb, kF32Tol, "layernorm dbias" + tag);
    // Deterministic: the same call again adds exactly the same bits.
    // (into a spare dinp: gdinp must stay equal to dinp for the RMSNorm check below)
    Tensor gdw2 = to_gpu(to_cpu(gdw)), gdw3 = to_gpu(to_cpu(gdw)), spare_dinp = to_gpu(dinp);
    layernorm_backward(spare_dinp, gdw2, nullptr, gdout, ginp, gw, gmean, grstd);
    layernorm_backward(spare_dinp, gdw3, nullptr, gdout, ginp, gw, gmean, grstd);
    const Tensor a = to_cpu(gdw2), c = to_cpu(gdw3);
    EXPECT_EQ(std::memcmp(a.raw(), c.raw(), a.nbytes()), 0) << "layernorm dweight is not deterministic" << tag;

    Tensor rout = Tensor::empty({N, C}, DType::bf16), grout = Tensor::empty({N, C}, DType::bf16, MemTag::other,
                                                                            Device::cuda(0));
    rmsnorm_forward(rout, rstd, inp, w, 1e-6f);
    rmsnorm_forward(grout, grstd, ginp, gw, 1e-6f);
    expect_close(rout, grout, kBf16Tol, "rmsnorm bf16 out" + tag);
    expect_close(rstd, grstd, kF32Tol, "rmsnorm rstd" + tag);
    rmsnorm_backward(dinp, dw, dout, inp, w, rstd);
    rmsnorm_backward(gdinp, gdw, gdout, ginp, gw, grstd);
    // C=1 again: dinp = w dy rstd (1 - x^2 rstd^2), a difference of two nearly equal numbers.
    expect_close(dinp, gdinp, C == 1 ? 1e-4 : kF32Tol, "rmsnorm dinp" + tag);
    expect_close(dw, gdw, kF32Tol, "rmsnorm dweight" + tag);
  }
}

TEST(CudaLoss, CrossEntropyForwardAndInPlaceForwardBackward) {
  ZT_REQUIRE_CUDA();
  const int64_t N = 67, V = 50257;
  const Tensor logits = random_cpu({N, V}, 30, 4.f);
  Tensor targets = Tensor::empty({N}, DType::i32);
  for (int64_t i = 0; i < N; ++i) targets.data<int32_t>()[i] = static_cast<int32_t>((i * 7919) % V);
  const Tensor gtargets = to_gpu(targets);
  Tensor losses = Tensor::empty({N}, DType::f32), glosses = to_gpu(losses);
  Tensor glogits = to_gpu(logits);
  cross_entropy_forward(losses, logits, targets);
  cross_entropy_forward(glosses, glogits, gtargets);
  expect_close(losses, glosses, kF32Tol, "cross_entropy_forward");
  Tensor dlogits = logits.clone(MemTag::other);
  cross_entropy_forward_backward(losses, dlogits, dlogits, targets, 0.5f);
  cross_entropy_forward_backward(glosses, glogits, glogits, gtargets, 0.5f);  // in place, as the model calls it
  expect_close(losses, glosses, kF32Tol, "cross_entropy_forward_backward losses");
  expect_close(dlogits, glogits, kF32Tol, "cross_entropy_forward_backward dlogits");
}

TEST(CudaEmbedding, ForwardAndDeterministicBackwardWithRepeatedTokens) {
  ZT_REQUIRE_CUDA();
  // A few rows of many repeats; and 1300 rows whose first 600 share one token (a run longer
  // than the backward's 256-thread blocks scan at once) among 37 others.
  struct Case {
    int64_t V, C, T, B;
    int64_t run;  // leading rows of token 7
    int64_t mod;
  };
  for (const Case k : {Case{103, 97, 13, 5, 0, 11}, Case{64, 130, 100, 13, 600, 37}}) {
    const int64_t N = k.B * k.T, C = k.C, T = k.T;
    const std::string tag = " N=" + std::to_string(N);
    Tensor tokens = Tensor::empty({N}, DType::i32);
    for (int64_t i = 0; i < N; ++i) tokens.data<int32_t>()[i] = static_cast<int32_t>(i < k.run ? 7 : (i * i) % k.mod);
    const Tensor wte = random_cpu({k.V, C}, 40), wpe = random_cpu({T + 3, C}, 41), dout = random_cpu({N, C}, 42);
    const Tensor gtokens = to_gpu(tokens);
    Tensor out = Tensor::empty({N, C}, DType::f32), gout = to_gpu(out);
    embedding_forward(out, tokens, wte, &wpe, T);
    const Tensor gwpe = to_gpu(wpe);
    embedding_forward(gout, gtokens, to_gpu(wte), &gwpe, T);
    expect_close(out, gout, 0, "embedding_forward" + tag);
    Tensor dwte = random_cpu({k.V, C}, 43), dwpe = random_cpu({T + 3, C}, 44);
    Tensor gdwte = to_gpu(dwte), gdwpe = to_gpu(dwpe);
    embedding_backward(dwte, &dwpe, dout, tokens, T);
    embedding_backward(gdwte, &gdwpe, to_gpu(dout), gtokens, T);
    // Same summation order as the CPU kernel: bitwise equal.
    expect_close(dwte, gdwte, 0, "embedding dwte" + tag);
    expect_close(dwpe, gdwpe, kF32Tol, "embedding dwpe" + tag);
  }
}

TEST(CudaOptim, AdamWAndSgdUpdatesMatchTheCpu) {
  ZT_REQUIRE_CUDA();
  const int64_t n = 70001;
  Tensor p = random_cpu({n}, 50), g = random_cpu({n}, 51), m = random_cpu({n}, 52, 0.1f), v = random_cpu({n}, 53, 0.1f);
  for (int64_t i = 0; i < n; ++i) v.data<float>()[i] = std::fabs(v.data<float>()[i]);
  Tensor gp = to_gpu(p), gm = to_gpu(m), gv = to_gpu(v);
  const Tensor gg = to_gpu(g);
  const AdamWStep s{.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f, .step = 3,
                    .grad_scale = 0.5f};
  for (int k = 0; k < 3; ++k) {
    adamw_update(p, g, m, v, s);
    adamw_update(gp, gg, gm, gv, s);
  }
  expect_close(p, gp, kF32Tol, "adamw param");
  expect_close(m, gm, kF32Tol, "adamw m");
  expect_close(v, gv, kF32Tol, "adamw v");
  Tensor buf = random_cpu({n}, 54), gbuf = to_gpu(buf);
  const SgdStep sg{.lr = 0.01f, .momentum = 0.9f, .weight_decay = 0.01f, .grad_scale = 2.f};
  sgd_update(p, g, &buf, sg);
  sgd_update(gp, gg, &gbuf, sg);
  expect_close(p, gp, kF32Tol, "sgd param");
  expect_close(buf, gbuf, kF32Tol, "sgd momentum");
  sgd_update(p, g, nullptr, {.lr = 0.01f, .momentum = 0.f, .weight_decay = 0.f});
  sgd_update(gp, gg, nullptr, {.lr = 0.01f, .momentum = 0.f, .weight_decay = 0.f});
  expect_close(p, gp, kF32Tol, "sgd without momentum");
}

TEST(CudaTokenMix, WorkerRowsGatherAndScatter) {
  ZT_REQUIRE_CUDA();
  const int64_t B = 3, T = 12, C = 19, k = 4;
  const Tensor full = random_cpu({B * T, C}, 60), workers = random_cpu({B * T / k, C}, 61);
  Tensor out = Tensor::empty({B * T / k, C}, DType::f32), gout = to_gpu(out);
  gather_worker_rows(out, full, T, k);
  gather_worker_rows(gout, to_gpu(full), T, k);
  expect_close(out, gout, 0, "gather_worker_rows");
  Tensor f = full.clone(MemTag::other), gf = to_gpu(full);
  scatter_worker_rows(f, workers, T, k);
  scatter_worker_rows(gf, to_gpu(workers), T, k);
  expect_close(f, gf, 0, "scatter_worker_rows");
}

}  // namespace
}  // namespace zt::testing
