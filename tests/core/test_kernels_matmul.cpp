// matmul: every transpose combination against an f64 reference, alpha/beta semantics,
// leading dims folded into rows, shape errors and run-to-run determinism.
#include <cmath>
#include <limits>

#include "tests/core/test_kernels_util.h"

namespace zt {
namespace {

using namespace zt::testing;

// out (M,N) = alpha * op(a) op(b) + beta * out0, in f64.
std::vector<double> matmul_ref(const Tensor& a, const Tensor& b, const Tensor& out0, bool ta,
                               bool tb, int64_t M, int64_t K, int64_t N, double alpha,
                               double beta) {
  std::vector<double> ref(M * N);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double av = ta ? f32(a)[k * M + i] : f32(a)[i * K + k];
        const double bv = tb ? f32(b)[j * K + k] : f32(b)[k * N + j];
        s += av * bv;
      }
      ref[i * N + j] = alpha * s + (beta != 0 ? beta * f32(out0)[i * N + j] : 0.0);
    }
  return ref;
}

TEST(KernelMatmulCases, AllFourTransposesOverwriteWithBetaZero) {
  const int64_t M = 7, K = 12, N = 10;  // no two equal, none a power of two
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "trans_a " << ta << " trans_b " << tb);
      Tensor a = random_tensor(ta ? Shape{K, M} : Shape{M, K}, 1);
      Tensor b = random_tensor(tb ? Shape{N, K} : Shape{K, N}, 2);
      // beta = 0 must ignore out's old contents entirely, NaN included.
      Tensor out = Tensor::empty({M, N}, DType::f32);
      fill(out, std::numeric_limits<float>::quiet_NaN());
      matmul(out, a, b, {ta, tb, 1.5f, 0.f});
      expect_matches(out, matmul_ref(a, b, out, ta, tb, M, K, N, 1.5, 0), 1e-5, 1e-5, "out");
    }
}

TEST(KernelMatmulCases, BetaOneAccumulatesForAllTransposes) {
  const int64_t M = 9, K = 5, N = 13;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "trans_a " << ta << " trans_b " << tb);
      Tensor a = random_tensor(ta ? Shape{K, M} : Shape{M, K}, 3);
      Tensor b = random_tensor(tb ? Shape{N, K} : Shape{K, N}, 4);
      Tensor out = random_tensor({M, N}, 5), out0 = copy_of(out);
      matmul(out, a, b, {ta, tb, -0.5f, 1.f});
      expect_matches(out, matmul_ref(a, b, out0, ta, tb, M, K, N, -0.5, 1), 1e-5, 1e-5, "out");
    }
}

TEST(KernelMatmulCases, DefaultOptionsAreAPlainProduct) {
  const int64_t M = 3, K = 4, N = 6;
  Tensor a = random_tensor({M, K}, 6), b = random_tensor({K, N}, 7);
  Tensor out = random_tensor({M, N}, 8);  // overwritten: default beta is 0
  matmul(out, a, b);
  expect_matches(out, matmul_ref(a, b, out, false, false, M, K, N, 1, 0), 1e-5, 1e-5, "out");
}

TEST(KernelMatmulCases, LeadingDimsFoldIntoRows) {
  // a (2,3,K) reads as (6,K); out (2,3,N) as (6,N).
  const int64_t K = 5, N = 11;
  Tensor a = random_tensor({2, 3, K}, 9), b = random_tensor({N, K}, 10);
  Tensor out = Tensor::empty({2, 3, N}, DType::f32);
  matmul(out, a, b, {false, true, 1.f, 0.f});
  expect_matches(out, matmul_ref(a, b, out, false, true, 6, K, N, 1, 0), 1e-5, 1e-5, "out");
}

TEST(KernelMatmulCases, RejectsMismatchedShapes) {
  Tensor a = random_tensor({4, 5}, 1), b = random_tensor({6, 7}, 2);
  Tensor out = Tensor::empty({4, 7}, DType::f32);
  EXPECT_NE(error_of([&] { matmul(out, a, b); }), "(no error)");
  Tensor b2 = random_tensor({5, 7}, 3), wrong_out = Tensor::empty({4, 8}, DType::f32);
  EXPECT_NE(error_of([&] { matmul(wrong_out, a, b2); }), "(no error)");
  EXPECT_EQ(error_of([&] { matmul(out, a, b2); }), "(no error)");
  Tensor bf = Tensor::empty({5, 7}, DType::bf16);
  EXPECT_NE(error_of([&] { matmul(out, a, bf); }), "(no error)");
}

TEST(KernelMatmulCases, BitwiseDeterministic) {
  const int64_t M = 131, K = 97, N = 203;
  Tensor a = random_tensor({M, K}, 11), b = random_tensor({N, K}, 12);
  Tensor o1 = Tensor::empty({M, N}, DType::f32), o2 = Tensor::empty({M, N}, DType::f32);
  matmul(o1, a, b, {false, true, 1.f, 0.f});
  matmul(o2, a, b, {false, true, 1.f, 0.f});
  EXPECT_TRUE(bitwise_equal(o1, o2));
}

}  // namespace
}  // namespace zt
