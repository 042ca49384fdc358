#include "core/cpu/gemm.h"

#include <oneapi/dnnl/dnnl.h>

#include <atomic>

#include "core/cpu/gemm_blocked.h"
#include "core/cpu/reduce.h"
#include "core/error.h"

namespace zt::cpu {
namespace {

// oneDNN's kernels for ZT_CPU_ISA (read before its first JIT compile, the only time it can be
// set). A CPU without AVX2 gets oneDNN's SSE4.1 kernels, its lowest JIT level.
void cap_onednn_isa() {
  const Isa isa = process_isa();
  if (isa >= Isa::avx512) return;  // oneDNN's own best (it uses no AVX512-BF16 in sgemm)
  const dnnl_cpu_isa_t cap = isa == Isa::avx2 ? dnnl_cpu_isa_avx2 : dnnl_cpu_isa_sse41;
  const dnnl_status_t st = dnnl_set_max_cpu_isa(cap);
  ZT_CHECK(st == dnnl_success, "dnnl_set_max_cpu_isa({}) failed with status {}", isa_name(isa), static_cast<int>(st));
}

std::atomic<int> g_bf16_a_read{-1};  // a forced Bf16ARead, or -1: this CPU's

}  // namespace

Bf16ARead avx512_bf16_a_read() {
  const int forced = g_bf16_a_read.load(std::memory_order_relaxed);
  if (forced >= 0) return static_cast<Bf16ARead>(forced);
  return shuffles_share_fma_ports() ? Bf16ARead::packed : Bf16ARead::in_place;
}

ScopedBf16ARead::ScopedBf16ARead(Bf16ARead read) : saved_(g_bf16_a_read.exchange(static_cast<int>(read))) {}
ScopedBf16ARead::~ScopedBf16ARead() { g_bf16_a_read.store(saved_); }

void sgemm_small(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  [[maybe_unused]] static const bool capped = (cap_onednn_isa(), true);
  if (M == 0 || N == 0) return;
  dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda,
                                B, ldb, beta, C, ldc);
  ZT_CHECK(st == dnnl_success, "dnnl_sgemm failed with status {}", static_cast<int>(st));
}

namespace {

void run_blocked(Isa isa, const blocked::Args& g) {
  ZT_CHECK(cpu_supports(isa), "the {} GEMM kernel on a CPU without {}", isa_name(isa), isa_name(isa));
  switch (isa) {
    case Isa::amx:  // AMX tiles for bf16 GEMMs; an exact fp32 operand needs fp32 FMAs
      if (g.A.storage != blocked::Storage::f32 && g.B.storage != blocked::Storage::f32) return blocked::gemm_amx(g);
      return blocked::gemm_avx512(g);
    case Isa::avx512bf16:  // bf16 pairs for bf16 GEMMs; an exact fp32 operand needs fp32 FMAs
      if (g.A.storage != blocked::Storage::f32 && g.B.storage != blocked::Storage::f32)
        return blocked::gemm_avx512_bf16(g);
      return blocked::gemm_avx512(g);
    case Isa::avx512: return blocked::gemm_avx512(g);
    case Isa::avx2: return blocked::gemm_avx2(g);
    case Isa::generic: return blocked::gemm_generic(g);
  }
}

blocked::Operand operand(Bf16Operand x) {
  return {x.data, x.fp32 ? blocked::Storage::f32_rounded : blocked::Storage::bf16};
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc, const Epilogue& epilogue) {
  if (active_isa() == Isa::avx2)
    return sgemm_blocked_isa(Isa::avx2, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epilogue);
  sgemm_small(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (epilogue.active()) blocked::finish_rows(epilogue, C, ldc, M, N);
}

void gemm_bf16_isa(Isa isa, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, Bf16Operand A,
                   int64_t lda, Bf16Operand B, int64_t ldb, float beta, float* C, int64_t ldc,
                   const Epilogue& epilogue) {
  run_blocked(isa, {trans_a, trans_b, M, N, K, alpha, operand(A), lda, operand(B), ldb, beta, C, ldc, epilogue});
}

void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               Bf16Operand A, int64_t lda, Bf16Operand B, int64_t ldb, float beta, float* C,
               int64_t ldc, const Epilogue& epilogue) {
  gemm_bf16_isa(active_isa(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epilogue);
}

void gemm_bf16_tn_row_blocks(int64_t M, int64_t N, int64_t K, Bf16Operand A, int64_t lda, Bf16Operand B, int64_t ldb,
                             float beta, float* C, int64_t ldc, float* partials) {
  const RowBlocks blocks(K);
  const Isa isa = active_isa();
  // Inside this region each block's GEMM runs on its own thread (blocked::gemm does not nest).
#pragma omp parallel for schedule(static, 1) num_threads(blocks.count)
  for (int blk = 0; blk < blocks.count; ++blk) {
    const int64_t begin = blocks.begin(blk);
    float* out = blk == 0 ? C : partials + (blk - 1) * M * N;
    run_blocked(isa, {true, false, M, N, blocks.end(blk) - begin, 1.f, blocked::offset(operand(A), true, 0, begin, lda),
                      lda, blocked::offset(operand(B), false, begin, 0, ldb), ldb, blk == 0 ? beta : 0.f, out,
                      blk == 0 ? ldc : N});
  }
  if (blocks.count == 1) return;
#pragma omp parallel for schedule(static) if (M * N >= (int64_t{1} << 14))
  for (int64_t i = 0; i < M; ++i)
    for (int blk = 1; blk < blocks.count; ++blk) {
      const float* p = partials + (blk - 1) * M * N + i * N;
      float* c = C + i * ldc;
#pragma omp simd
      for (int64_t j = 0; j < N; ++j) c[j] += p[j];
    }
}

void sgemm_blocked_isa(Isa isa, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                       const Epilogue& epilogue) {
  run_blocked(isa, {trans_a, trans_b, M, N, K, alpha, {A, blocked::Storage::f32}, lda, {B, blocked::Storage::f32}, ldb,
                    beta, C, ldc, epilogue});
}

}  // namespace zt::cpu
