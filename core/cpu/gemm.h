// Row-major single-precision GEMM on the CPU, backed by oneDNN (AVX-512 kernels at ~200
// GFLOP/s per core on Zen 5, independent of OPENBLAS_CORETYPE).
// C (M,N) = alpha * op(A) (M,K) @ op(B) (K,N) + beta * C; lda/ldb/ldc are row strides.
#pragma once
#include <cstdint>

namespace zt::cpu {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc);

// A bf16 GEMM operand: bf16 storage (raw uint16), or fp32 rounded to bf16 as it is read,
// which gives the same product as converting it first without the converted copy.
struct Bf16Operand {
  Bf16Operand(const uint16_t* bf16) : data(bf16), fp32(false) {}
  static Bf16Operand rounded(const float* f32) { return Bf16Operand(f32); }
  const void* data;
  bool fp32;

 private:
  explicit Bf16Operand(const float* f32) : data(f32), fp32(true) {}
};

// The same with bf16 A and B and fp32 accumulation and C. Runs our AVX-512 kernel where the
// CPU has AVX-512 (F, BW, VL), else oneDNN's matmul primitive.
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               Bf16Operand A, int64_t lda, Bf16Operand B, int64_t ldb, float beta, float* C,
               int64_t ldc);

// The two implementations behind gemm_bf16, callable directly so tests compare both.
bool has_avx512();
// Packing to fp32 and an fp32 FMA micro-kernel (core/cpu/gemm_bf16.cpp); only where
// has_avx512().
void gemm_bf16_avx512(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      Bf16Operand A, int64_t lda, Bf16Operand B, int64_t ldb, float beta, float* C,
                      int64_t ldc);
// oneDNN's matmul primitive, built once per shape and cached; ~80 GFLOP/s per core on Zen 5
// with oneDNN 2.6 (vdpbf16ps-bound), half its fp32 sgemm, hence the kernel above.
void gemm_bf16_onednn(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const uint16_t* A, int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C,
                      int64_t ldc);

}  // namespace zt::cpu
