// Row-major single-precision GEMM on the CPU, backed by oneDNN (AVX-512 kernels at ~200
// GFLOP/s per core on Zen 5, independent of OPENBLAS_CORETYPE).
// C (M,N) = alpha * op(A) (M,K) @ op(B) (K,N) + beta * C; lda/ldb/ldc are row strides.
#pragma once
#include <cstdint>

namespace zt::cpu {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc);

// The same with bf16 A and B (raw uint16 storage) and fp32 accumulation and C: oneDNN's
// matmul primitive (AVX512-BF16 where the CPU has it). Primitives are built once per shape
// and cached, so steady-state calls only execute.
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const uint16_t* A, int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C,
               int64_t ldc);

}  // namespace zt::cpu
