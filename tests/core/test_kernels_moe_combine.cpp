// The Mixture of Experts weighted combine's backward (combine_rows_backward) against an f64
// reference: what it adds to dinp and to dweights, at a row width with a partial last vector,
// and the same bits at any thread count.
#include <omp.h>

#include "tests/core/test_kernels_util.h"

namespace zt {
namespace {

using namespace zt::testing;

TEST(KernelMoeCombine, BackwardAddsTheWeightedRowsAndTheDotsOfTheReference) {
  const int64_t N = 9, K = 2, C = 37, M = N * K;  // 37 = 4 x 8 + 5: whole lanes and a tail
  Tensor dout = random_tensor({N, C}, 1), inp = random_tensor({M, C}, 2, 4.f), weights = random_tensor({N, K}, 3);
  Tensor slots = Tensor::empty({N, K}, DType::i32);
  for (int64_t i = 0; i < M; ++i) slots.data<int32_t>()[i] = static_cast<int32_t>((i * 7) % M);  // a permutation
  const Tensor dinp0 = random_tensor({M, C}, 4), dw0 = random_tensor({N, K}, 5);
  std::vector<double> dinp_ref(f32(dinp0), f32(dinp0) + M * C), dw_ref(f32(dw0), f32(dw0) + M);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < K; ++j) {
      const int64_t s = slots.data<int32_t>()[n * K + j];
      double dot = 0;
      for (int64_t c = 0; c < C; ++c) {
        dinp_ref[s * C + c] += double(f32(weights)[n * K + j]) * f32(dout)[n * C + c];
        dot += double(f32(dout)[n * C + c]) * f32(inp)[s * C + c];
      }
      dw_ref[n * K + j] += dot;
    }
  const int saved = omp_get_max_threads();
  Tensor first_dw;
  for (int threads : {1, 2, 3}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    omp_set_num_threads(threads);
    Tensor dinp = copy_of(dinp0), dw = copy_of(dw0);
    combine_rows_backward(dinp, dw, dout, inp, slots, weights);
    expect_matches(dinp, dinp_ref, 1e-6, 1e-6, "dinp");
    expect_matches(dw, dw_ref, 1e-6, 1e-6, "dweights");
    if (!first_dw.defined()) first_dw = copy_of(dw);
    EXPECT_TRUE(bitwise_equal(dw, first_dw));
  }
  omp_set_num_threads(saved);
}

}  // namespace
}  // namespace zt
