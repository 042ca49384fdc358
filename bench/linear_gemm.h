// The three GEMMs of a linear layer (rows x in -> rows x out, weight (out, in) row-major), as
// the benchmarks time them: case 0 the forward y = x w^T (NT), case 1 the input gradient
// dx += dy w (NN), case 2 the weight gradient dw += dy^T x (TN).
#pragma once
#include <cstdint>

namespace zt::bench {

struct LinearGemm {
  bool ta, tb;
  int64_t M, N, K, lda, ldb;
  float beta;  // 0 for the forward; the gradients accumulate
};

inline constexpr const char* kLinearCaseNames[] = {"NT fwd", "NN dinp", "TN dweight"};

inline LinearGemm linear_gemm(int64_t rows, int64_t in, int64_t out, int which) {
  if (which == 0) return {false, true, rows, out, in, in, in, 0.f};
  if (which == 1) return {false, false, rows, in, out, out, in, 1.f};
  return {true, false, out, in, rows, out, in, 1.f};
}

}  // namespace zt::bench
