// linear_forward / linear_backward: f64 forward reference, finite-difference gradients for
// inp, weight and bias, the accumulate contract, optional dinp/bias, and determinism.
#include <omp.h>

#include "core/cpu/gemm.h"
#include "tests/core/test_kernels_util.h"
#include "tests/support/scoped_env_var.h"

namespace zt {
namespace {

using namespace zt::testing;

constexpr int64_t N = 7, C = 12, OC = 10;

std::vector<double> linear_ref(const Tensor& x, const Tensor& w, const Tensor* b, int64_t rows,
                               int64_t cin, int64_t cout) {
  std::vector<double> ref(rows * cout);
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t o = 0; o < cout; ++o) {
      double s = b ? f32(*b)[o] : 0.0;
      for (int64_t c = 0; c < cin; ++c) s += double(f32(x)[n * cin + c]) * f32(w)[o * cin + c];
      ref[n * cout + o] = s;
    }
  return ref;
}

TEST(KernelLinearCases, ForwardMatchesReferenceWithAndWithoutBias) {
  Tensor x = random_tensor({N, C}, 1), w = random_tensor({OC, C}, 2), b = random_tensor({OC}, 3);
  Tensor y = Tensor::empty({N, OC}, DType::f32);
  linear_forward(y, x, w, &b);
  expect_matches(y, linear_ref(x, w, &b, N, C, OC), 1e-5, 1e-5, "with bias");
  linear_forward(y, x, w, nullptr);
  expect_matches(y, linear_ref(x, w, nullptr, N, C, OC), 1e-5, 1e-5, "without bias");
}

TEST(KernelLinearCases, ForwardFoldsBatchAndTimeIntoRows) {
  Tensor x = random_tensor({2, 5, C}, 4), w = random_tensor({OC, C}, 5), b = random_tensor({OC}, 6);
  Tensor y = Tensor::empty({2, 5, OC}, DType::f32);
  linear_forward(y, x, w, &b);
  expect_matches(y, linear_ref(x, w, &b, 10, C, OC), 1e-5, 1e-5, "3-D");
}

TEST(KernelLinearCases, BackwardMatchesFiniteDifferencesForEveryInput) {
  Tensor x = random_tensor({N, C}, 7), w = random_tensor({OC, C}, 8), b = random_tensor({OC}, 9);
  Tensor proj = random_tensor({N, OC}, 10);
  Tensor y = Tensor::empty({N, OC}, DType::f32);
  Tensor dx = zeros_like(x), dw = zeros_like(w), db = zeros_like(b);
  linear_backward(&dx, dw, &db, proj, x, w);
  auto loss = [&] {
    linear_forward(y, x, w, &b);
    return project(y, proj);
  };
  // The loss is linear in each input, so a large step has no truncation error.
  expect_grad_close(loss, x, dx, "dinp", all_elements(x, 1e-2));
  expect_grad_close(loss, w, dw, "dweight", all_elements(w, 1e-2));
  expect_grad_close(loss, b, db, "dbias", all_elements(b, 1e-2));

  // Exact references too: dinp = dout @ W, dweight = dout^T @ x, dbias = column sums.
  std::vector<double> rdx(N * C, 0), rdw(OC * C, 0), rdb(OC, 0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < OC; ++o) {
      const double g = f32(proj)[n * OC + o];
      rdb[o] += g;
      for (int64_t c = 0; c < C; ++c) {
        rdx[n * C + c] += g * f32(w)[o * C + c];
        rdw[o * C + c] += g * f32(x)[n * C + c];
      }
    }
  expect_matches(dx, rdx, 1e-5, 1e-5, "dinp reference");
  expect_matches(dw, rdw, 1e-5, 1e-5, "dweight reference");
  expect_matches(db, rdb, 1e-5, 1e-5, "dbias reference");
}

TEST(KernelLinearCases, BackwardAccumulatesIntoEveryGradient) {
  Tensor x = random_tensor({N, C}, 11), w = random_tensor({OC, C}, 12), g = random_tensor({N, OC}, 13);
  Tensor dx = zeros_like(x), dw = zeros_like(w), db = Tensor::zeros({OC}, DType::f32);
  linear_backward(&dx, dw, &db, g, x, w);
  Tensor dx1 = copy_of(dx), dw1 = copy_of(dw), db1 = copy_of(db);
  linear_backward(&dx, dw, &db, g, x, w);
  expect_doubled(dx, dx1, "dinp");
  expect_doubled(dw, dw1, "dweight");
  expect_doubled(db, db1, "dbias");
}

TEST(KernelLinearCases, OptionalDinpAndDbias) {
  Tensor x = random_tensor({N, C}, 14), w = random_tensor({OC, C}, 15), g = random_tensor({N, OC}, 16);
  Tensor dx = zeros_like(x), dw = zeros_like(w), db = Tensor::zeros({OC}, DType::f32);
  linear_backward(&dx, dw, &db, g, x, w);
  Tensor dw_only = zeros_like(w);
  linear_backward(nullptr, dw_only, nullptr, g, x, w);  // first layer, no bias
  EXPECT_TRUE(bitwise_equal(dw_only, dw));
}

TEST(KernelLinearCases, LargeShapeMatchesReferenceAndIsDeterministic) {
  // Enough rows that the threaded bias reduction splits them into several blocks.
  const int64_t n = 301, c = 37, oc = 257;
  Tensor x = random_tensor({n, c}, 17), w = random_tensor({oc, c}, 18), g = random_tensor({n, oc}, 19);
  Tensor dx = zeros_like(x), dw = zeros_like(w), db = Tensor::zeros({oc}, DType::f32);
  linear_backward(&dx, dw, &db, g, x, w);
  std::vector<double> rdb(oc, 0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t o = 0; o < oc; ++o) rdb[o] += f32(g)[r * oc + o];
  expect_matches(db, rdb, 1e-5, 1e-4, "dbias");
  Tensor dx2 = zeros_like(x), dw2 = zeros_like(w), db2 = Tensor::zeros({oc}, DType::f32);
  linear_backward(&dx2, dw2, &db2, g, x, w);
  EXPECT_TRUE(bitwise_equal(dx, dx2));
  EXPECT_TRUE(bitwise_equal(dw, dw2));
  EXPECT_TRUE(bitwise_equal(db, db2));
}

// The bias (and an output's rounding) run on each finished tile of the GEMM, or as passes after
// a library product: large enough for every path's threading and for partial edge tiles, the
// f32 output matches the reference and a bf16 or f16 output is bitwise its rounding.
TEST(KernelLinearCases, LargeForwardAddsTheBiasAndRoundsTheOutputLikeSeparatePasses) {
  const int64_t n = 301, c = 37, oc = 257;
  Tensor x = random_tensor({n, c}, 20), w = random_tensor({oc, c}, 21), b = random_tensor({oc}, 22);
  Tensor y = Tensor::empty({n, oc}, DType::f32);
  linear_forward(y, x, w, &b);
  expect_matches(y, linear_ref(x, w, &b, n, c, oc), 1e-5, 1e-5, "f32 out");
  for (DType dt : {DType::bf16, DType::f16}) {
    Tensor low = Tensor::empty({n, oc}, dt), want = Tensor::empty({n, oc}, dt);
    linear_forward(low, x, w, &b);
    convert(want, y);
    EXPECT_TRUE(bitwise_equal(low, want)) << dtype_name(dt) << " out";
  }
}

// GradWrite::overwrite, for dinp (an activation gradient) and for dweight (a step's first
// write of a stale weight gradient): the overwritten gradient gets exactly what a zeroed one
// accumulates, whatever it held (NaN included: a GEMM with beta 0 must not read it), and the
// others bitwise what a call accumulating all three adds. Every compute dtype, K past one
// packed block (dinp's K = OC),
// at 1 and 2 threads (bf16 at 2: dweight by the row-blocks GEMM, 300 rows a block).
TEST(KernelLinearCases, AnOverwrittenGradientEqualsAZeroedAccumulationAndTheOthersAccumulate) {
  const int saved = omp_get_max_threads();
  const int64_t n = 600, c = 37, oc = 257;
  for (int threads : {1, 2})
    for (DType dt : {DType::f32, DType::bf16, DType::f16})
      for (bool dweight_overwritten : {false, true}) {
        const std::string what = std::string(dtype_name(dt)) + " at " + std::to_string(threads) + " threads, " +
                                 (dweight_overwritten ? "dweight" : "dinp") + " overwritten: ";
        omp_set_num_threads(threads);
        Tensor x = random_tensor({n, c}, 21), w32 = random_tensor({oc, c}, 22), g = random_tensor({n, oc}, 23);
        Tensor w = Tensor::empty({oc, c}, dt);
        convert(w, w32);
        Tensor dx_acc = zeros_like(x), dw_acc = zeros_like(w32), db_acc = Tensor::zeros({oc}, DType::f32);
        linear_backward(&dx_acc, dw_acc, &db_acc, g, x, w);

        // What the accumulating gradients must hold: a second call that accumulates all three.
        Tensor dx2 = copy_of(dx_acc), dw2 = copy_of(dw_acc), db2 = copy_of(db_acc);
        linear_backward(&dx2, dw2, &db2, g, x, w);

        Tensor dx = copy_of(dx_acc), dw = copy_of(dw_acc), db = copy_of(db_acc);
        Tensor& stale = dweight_overwritten ? dw : dx;
        stale = random_tensor(stale.shape(), 24);
        for (int64_t i = 0; i < stale.numel(); i += 7) f32(stale)[i] = std::nanf("");
        const GradWrite overwrite = GradWrite::overwrite, add = GradWrite::accumulate;
        linear_backward(&dx, dw, &db, g, x, w, dweight_overwritten ? add : overwrite, dweight_overwritten ? overwrite : add);
        EXPECT_TRUE(bitwise_equal(dx, dweight_overwritten ? dx2 : dx_acc)) << what << "dinp";
        EXPECT_TRUE(bitwise_equal(dw, dweight_overwritten ? dw_acc : dw2)) << what << "dweight";
        EXPECT_TRUE(bitwise_equal(db, db2)) << what << "dbias";
      }
  omp_set_num_threads(saved);
}

// bf16 weights round dout to bf16 for both GEMMs, in the pass that also sums its columns for
// dbias (an fp32 sum of the unrounded dout). Fed a dout that is already bf16-exact, the
// GEMMs see the same operands, so dinp and dweight must agree bit for bit; the dout mixes
// rounding ties, subnormals and values near both, in rows wider than a vector with a tail.
TEST(KernelLinearCases, Bf16BackwardRoundsDoutExactlyAsConversion) {
  // 131 outputs: rows that start at every alignment; 1100: rounded in three column chunks.
  for (const int64_t oc : {131, 1100}) {
    SCOPED_TRACE("outputs " + std::to_string(oc));
    const int64_t n = 67, c = 40;
    Tensor x = random_tensor({n, c}, 31), w32 = random_tensor({oc, c}, 32), g = random_tensor({n, oc}, 33);
    const float specials[] = {1.f + 1.f / 256, 1.f + 3.f / 256, -(1.f + 1.f / 256), 1e-39f, -3e-40f,
                              1.1754942e-38f, 0.f, -0.f, 3.3895314e38f};
    for (int64_t i = 0; i < n * oc; i += 5) f32(g)[i] = specials[(i / 5) % std::size(specials)] * 1e-3f;
    for (int64_t i = 2; i < n * oc; i += 11) f32(g)[i] = specials[(i / 11) % std::size(specials)];
    Tensor w = Tensor::empty({oc, c}, DType::bf16);
    convert(w, w32);
    Tensor g_bf16 = Tensor::empty({n, oc}, DType::bf16), g_exact = Tensor::empty({n, oc}, DType::f32);
    convert(g_bf16, g);
    convert(g_exact, g_bf16);
    Tensor dx = Tensor::zeros({n, c}, DType::f32), dw = Tensor::zeros({oc, c}, DType::f32);
    Tensor db = Tensor::zeros({oc}, DType::f32);
    linear_backward(&dx, dw, &db, g, x, w);
    Tensor dx_exact = zeros_like(dx), dw_exact = zeros_like(dw);
    linear_backward(&dx_exact, dw_exact, nullptr, g_exact, x, w);
    EXPECT_TRUE(bitwise_equal(dx, dx_exact)) << "dinp";
    EXPECT_TRUE(bitwise_equal(dw, dw_exact)) << "dweight";
    Tensor db32 = Tensor::zeros({oc}, DType::f32), dw32 = zeros_like(dw);
    linear_backward(nullptr, dw32, &db32, g, x, w32);  // fp32 weights: the same column sums
    EXPECT_TRUE(bitwise_equal(db, db32)) << "dbias";
  }
}

// The GPU forward's row plan (the memory plan counts its workspace). With
// ZT_CUDA_LINEAR_OUT=aligned, aligned widths need none and others get 16-byte aligned rows
// in chunks of at most 256 MiB, whole multiples of 128 rows; direct (the default) writes
// every width as it is; another value is an error naming the variable.
TEST(KernelLinearCases, DeviceOutRowsAlignMisalignedWidthsInBoundedChunks) {
  {
    ScopedEnvVar unset("ZT_CUDA_LINEAR_OUT", nullptr);
    EXPECT_EQ(device_out_rows(16384, 50257).stride, 50257);
    EXPECT_EQ(device_out_rows(16384, 50257).chunk_rows, 16384);
  }
  {
    ScopedEnvVar typo("ZT_CUDA_LINEAR_OUT", "padded");
    EXPECT_NE(error_of([] { device_out_rows(4, 5); }).find("ZT_CUDA_LINEAR_OUT=padded"), std::string::npos);
  }
  ScopedEnvVar aligned("ZT_CUDA_LINEAR_OUT", "aligned");
  EXPECT_EQ(device_out_rows(16384, 768).stride, 768);
  EXPECT_EQ(device_out_rows(16384, 768).chunk_rows, 16384);
  const DeviceOutRows head = device_out_rows(16384, 50257);
  EXPECT_EQ(head.stride, 50260);
  EXPECT_EQ(head.chunk_rows % 128, 0);
  EXPECT_LE(head.chunk_rows * head.stride * 4, int64_t{256} << 20);
  EXPECT_GT((head.chunk_rows + 128) * head.stride * 4, int64_t{256} << 20);
  EXPECT_EQ(device_out_rows(75, 131).chunk_rows, 75);  // fewer rows than a chunk
  EXPECT_EQ(device_out_rows(75, 131).stride, 132);
}

TEST(KernelLinearCases, RejectsMismatchedShapes) {
  Tensor x = random_tensor({N, C}, 1), w = random_tensor({OC, C + 1}, 2);
  Tensor y = Tensor::empty({N, OC}, DType::f32), b = random_tensor({OC + 1}, 3);
  EXPECT_NE(error_of([&] { linear_forward(y, x, w, nullptr); }), "(no error)");
  Tensor w_ok = random_tensor({OC, C}, 4);
  EXPECT_NE(error_of([&] { linear_forward(y, x, w_ok, &b); }), "(no error)");
  Tensor dw_wrong = Tensor::zeros({C, OC + 1}, DType::f32), g = random_tensor({N, OC}, 5);
  EXPECT_NE(error_of([&] { linear_backward(nullptr, dw_wrong, nullptr, g, x, w_ok); }), "(no error)");
}


// Mixed precision: with bf16 or f16 weights the GEMM operands (f32 inputs included) are
// rounded to that dtype and accumulated in fp32, so the result equals an f64 reference on
// the rounded operands to fp32 accumulation error.
Tensor rounded(const Tensor& t, DType dt) {
  Tensor low = Tensor::empty(t.shape(), dt), back = Tensor::empty(t.shape(), DType::f32);
  convert(low, t);
  convert(back, low);
  return back;
}

// With at least 256 rows per thread, a bf16 weight gradient is summed by the row blocks that
// rounded dout (cpu::gemm_bf16_tn_row_blocks). At 1, 2 and 3 threads dinp, dweight (added to
// what it held) and dbias match the f64 reference on rounded operands, and dweight is
// bitwise the row-blocks GEMM of the rounded dout (at 1 thread: one plain GEMM).
TEST(KernelLinearCases, Bf16WeightGradientSumsTheRowBlocksThatRoundedDout) {
  const int saved = omp_get_max_threads();
  const int64_t n = 800, c = 40, oc = 24;
  Tensor x = random_tensor({n, c}, 41), w32 = random_tensor({oc, c}, 42), g = random_tensor({n, oc}, 43);
  const Tensor dw0 = random_tensor({oc, c}, 44);
  Tensor w = Tensor::empty({oc, c}, DType::bf16), g_bf16 = Tensor::empty({n, oc}, DType::bf16);
  convert(w, w32);
  convert(g_bf16, g);
  const Tensor xr = rounded(x, DType::bf16), wr = rounded(w32, DType::bf16), gr = rounded(g, DType::bf16);
  std::vector<double> dx_ref(n * c, 0.0), dw_ref(f32(dw0), f32(dw0) + oc * c), db_ref(oc, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < oc; ++o) {
      const double gv = f32(gr)[i * oc + o];
      db_ref[o] += f32(g)[i * oc + o];
      for (int64_t k = 0; k < c; ++k) {
        dx_ref[i * c + k] += gv * f32(wr)[o * c + k];
        dw_ref[o * c + k] += gv * f32(xr)[i * c + k];
      }
    }
  for (int threads : {1, 2, 3}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    omp_set_num_threads(threads);
    Tensor dx = Tensor::zeros({n, c}, DType::f32), dw = copy_of(dw0), db = Tensor::zeros({oc}, DType::f32);
    linear_backward(&dx, dw, &db, g, x, w);
    expect_matches(dx, dx_ref, 1e-5, 1e-5, "dinp");
    expect_matches(dw, dw_ref, 1e-5, 1e-5, "dweight");
    expect_matches(db, db_ref, 1e-5, 1e-5, "dbias");
    Tensor want = copy_of(dw0), partials = Tensor::empty({(threads - 1) * oc * c + 1}, DType::f32);
    cpu::gemm_bf16_tn_row_blocks(oc, c, n, g_bf16.data<uint16_t>(), oc, cpu::Bf16Operand::rounded(f32(x)), c, 1.f,
                                 f32(want), c, f32(partials));
    EXPECT_TRUE(bitwise_equal(dw, want)) << "dweight against the row-blocks GEMM";
  }
  omp_set_num_threads(saved);
}

class KernelLinearLowPrecision : public ::testing::TestWithParam<DType> {};

TEST_P(KernelLinearLowPrecision, ForwardAndBackwardMatchTheReferenceOnRoundedOperands) {
  const DType dt = GetParam();
  constexpr int64_t n = 33, c = 40, oc = 24;  // odd sizes: no lucky blocking
  Tensor x = random_tensor({n, c}, 11), w = random_tensor({oc, c}, 12), b = random_tensor({oc}, 13);
  Tensor w_low = Tensor::empty({oc, c}, dt);
  convert(w_low, w);
  const Tensor xr = rounded(x, dt), wr = rounded(w, dt);
  Tensor y = Tensor::empty({n, oc}, DType::f32);
  linear_forward(y, x, w_low, &b);
  expect_matches(y, linear_ref(xr, wr, &b, n, c, oc), 1e-5, 1e-5, "forward");

  Tensor dout = random_tensor({n, oc}, 14);
  const Tensor gr = rounded(dout, dt);
  Tensor dx = Tensor::zeros({n, c}, DType::f32), dw = Tensor::zeros({oc, c}, DType::f32), db = Tensor::zeros({oc}, DType::f32);
  linear_backward(&dx, dw, &db, dout, x, w_low);
  std::vector<double> dx_ref(n * c, 0.0), dw_ref(oc * c, 0.0), db_ref(oc, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < oc; ++o) {
      const double g = f32(gr)[i * oc + o];
      db_ref[o] += f32(dout)[i * oc + o];  // the bias gradient sums fp32 dout: no GEMM
      for (int64_t k = 0; k < c; ++k) {
        dx_ref[i * c + k] += g * f32(wr)[o * c + k];
        dw_ref[o * c + k] += g * f32(xr)[i * c + k];
      }
    }
  expect_matches(dx, dx_ref, 1e-5, 1e-5, "dinp");
  expect_matches(dw, dw_ref, 1e-5, 1e-5, "dweight");
  expect_matches(db, db_ref, 1e-5, 1e-5, "dbias");
  // Rounding is real: the f32 result differs from the low-precision one.
  Tensor y32 = Tensor::empty({n, oc}, DType::f32);
  linear_forward(y32, x, w, &b);
  double diff = 0;
  for (int64_t i = 0; i < y.numel(); ++i) diff = std::max(diff, std::abs(double(f32(y)[i]) - f32(y32)[i]));
  EXPECT_GT(diff, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(DTypes, KernelLinearLowPrecision, ::testing::Values(DType::bf16, DType::f16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(KernelLinearLowPrecisionCases, F16OverflowsPast65504LikeHardware) {
  Tensor x = Tensor::empty({1, 2}, DType::f32), w = Tensor::empty({1, 2}, DType::f16);
  f32(x)[0] = 1e5f;  // not representable in f16
  f32(x)[1] = 1.f;
  Tensor w32 = Tensor::empty({1, 2}, DType::f32);
  f32(w32)[0] = f32(w32)[1] = 1.f;
  convert(w, w32);
  Tensor y = Tensor::empty({1, 1}, DType::f32);
  linear_forward(y, x, w, nullptr);
  EXPECT_TRUE(std::isinf(f32(y)[0]));
  Tensor wb = Tensor::empty({1, 2}, DType::bf16);
  convert(wb, w32);
  linear_forward(y, x, wb, nullptr);  // bf16 has fp32's range
  EXPECT_NEAR(f32(y)[0], 1e5 + 1, 1e5 * 1e-2);
}

TEST(KernelLinearLowPrecisionCases, InputsOfAnotherLowPrecisionAreRefused) {
  Tensor x = Tensor::empty({2, 3}, DType::f16), w = Tensor::empty({4, 3}, DType::bf16), y = Tensor::empty({2, 4}, DType::f32);
  EXPECT_NE(error_of([&] { linear_forward(y, x, w, nullptr); }).find("linear input f16 with bf16 weights"), std::string::npos);
}

}  // namespace
}  // namespace zt
