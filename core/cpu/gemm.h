// Row-major GEMMs on the CPU. C (M,N) = alpha * op(A) (M,K) @ op(B) (K,N) + beta * C;
// lda/ldb/ldc are row strides.
#pragma once
#include <cstdint>

#include "core/cpu/isa.h"

namespace zt::cpu {

// fp32 GEMM for small products (attention's tiles, a few hundred thousand FLOPs per call):
// oneDNN's JIT sgemm on every ISA (attention.cpp sends its narrowest score tiles and
// backward's tile products to the blocked kernel with AVX-512, where oneDNN's per-call cost
// is the larger). It picks its kernels by cpuid; ZT_CPU_ISA caps them too, from the first
// call on (ScopedIsa does not: oneDNN fixes its ISA once per process).
void sgemm_small(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

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

// What the blocked GEMM does to each tile (or block, per ISA) of C once it is final, while it
// is in cache (a linear layer's bias and bf16 output without passes of their own): bias (N
// values) is added to every row of C; with bf16_out (row stride ldo) the result is rounded
// there (as f32_to_bf16) and C is left as scratch holding alpha op(A) op(B) + beta C.
struct Epilogue {
  const float* bias = nullptr;
  uint16_t* bf16_out = nullptr;
  int64_t ldo = 0;
  bool active() const { return bias != nullptr || bf16_out != nullptr; }
};

// fp32 GEMM of a model's layers, by the ISA in use: with AVX-512 oneDNN's JIT sgemm (~200
// GFLOP/s per core on Zen 5, independent of OPENBLAS_CORETYPE); with AVX2 our blocked kernel
// on fp32 operands (sgemm_blocked_isa below), which beat oneDNN's AVX2 sgemm at most model
// shapes and made a whole fp32 step 5-8% faster (default job and gpt2-124m, AVX2 forced on
// Zen 5); without AVX2, oneDNN's SSE4.1 kernels. The epilogue runs on C as the blocked kernel
// finishes it, and as a pass over C after oneDNN's product (the same values).
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc, const Epilogue& epilogue = {});

// bf16 A and B, fp32 accumulation and C: our blocked kernel (gemm_blocked.h) for
// active_isa(), or at Isa::amx oneDNN's AMX matmul (gemm_amx.cpp). Results are bitwise
// independent of the thread count.
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               Bf16Operand A, int64_t lda, Bf16Operand B, int64_t ldb, float beta, float* C,
               int64_t ldc, const Epilogue& epilogue = {});

// C (M,N) = A^T B + beta C for A (K,M) and B (K,N) row-major (a weight gradient: K is the
// batch's rows), bf16 as gemm_bf16, with K split into RowBlocks(K) (core/cpu/reduce.h): thread
// t multiplies only its block's rows, block 0 onto beta C and block b > 0 into partials + (b-1) M N
// (row stride N; (RowBlocks(K).count - 1) M N floats, never read before written), added to
// C in block order. A dout whose rounded copy the same blocks wrote (colsum_accumulate) is
// then read by each core from its own cache. Results depend on the thread count, as
// reduce_rows_into's, never on scheduling.
void gemm_bf16_tn_row_blocks(int64_t M, int64_t N, int64_t K, Bf16Operand A, int64_t lda, Bf16Operand B, int64_t ldb,
                             float beta, float* C, int64_t ldc, float* partials);

// gemm_bf16 through the kernel of one ISA (one this CPU supports), for tests and benchmarks
// that compare them; sgemm_blocked_isa runs the same kernels on fp32 operands as they are (no
// rounding; at avx512bf16 and amx that is the avx512 kernel), which checks their arithmetic at full
// precision and measures them against oneDNN's sgemm (slower at gpt2-124m's shapes, so not
// the fp32 path).
void gemm_bf16_isa(Isa isa, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, Bf16Operand A,
                   int64_t lda, Bf16Operand B, int64_t ldb, float beta, float* C, int64_t ldc,
                   const Epilogue& epilogue = {});
void sgemm_blocked_isa(Isa isa, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                       const Epilogue& epilogue = {});

// How many AMX matmul primitives this process has built (gemm_amx.cpp builds one per shape,
// a JIT compile each, and cuts a batch's row count so that few shapes arise): for tests.
int64_t amx_primitives_built();

// How the AVX-512 widening kernel (gemm_avx512.cpp) reads a bf16 A. in_place: each value is
// widened as the micro-kernel broadcasts it (a shuffle and an AND per row of the tile per k),
// with no pass of its own; packed: A is widened once into fp32 panels that the micro-kernel
// broadcasts from memory (loads only). On AMD's Zen 5 in place ran the bf16 step 2-4% faster;
// on Intel, whose shuffles take the FMAs' ports (shuffles_share_fma_ports()), packed ran the
// forward and input-gradient GEMMs 8-38% faster (one thread) and the default job's bf16 step
// at avx512 13-25% faster (2 threads, Emerald Rapids). The choice is this CPU's, or the
// one a ScopedBf16ARead forces (tests run both); the products are the same either way.
enum class Bf16ARead { in_place, packed };
Bf16ARead avx512_bf16_a_read();

class ScopedBf16ARead {
 public:
  explicit ScopedBf16ARead(Bf16ARead read);
  ~ScopedBf16ARead();
  ScopedBf16ARead(const ScopedBf16ARead&) = delete;
  ScopedBf16ARead& operator=(const ScopedBf16ARead&) = delete;

 private:
  int saved_;
};

}  // namespace zt::cpu
