// The AVX512-BF16 GEMM kernel for bf16 operands (see gemm_blocked.h for the loops around it):
// the 6 x 64 tile of gemm_avx512.cpp, but each step takes two k at once with vdpbf16ps, which
// adds a pair of bf16 products to each fp32 lane, where that kernel widens bf16 to fp32 and
// runs one FMA per k. On Zen 4 vdpbf16ps retires a zmm per cycle like vfmadd231ps, so it does
// twice the FLOPs (bench/bench_bf16_dot: 235 against 117 GFLOP/s per core); on Zen 5 it did
// half the FMA's, which is why Isa::avx512bf16 is the default only on Zen 4 (core/cpu/isa.cpp).
//
// Operands are kept in bf16 pairs along k: a 32-bit element holds op(X)[.., k] in its low half
// and op(X)[.., k + 1] in its high half, as vdpbf16ps multiplies them. B is packed that way
// (a panel holds, per pair of k, NR such elements); a row-major bf16 A is read where it lies,
// one 32-bit broadcast per row and pair; any other A is packed into pairs, rounded from fp32
// where it is fp32. An odd K ends on a pair whose high half is zero in B. Products of bf16
// values are exact in fp32 and the sums are fp32, as in the widening kernel; only the order of
// the additions differs (and vdpbf16ps treats subnormal inputs and results as zero).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/cpu/gemm_avx512.h"

namespace zt::cpu {
namespace {

using namespace avx512;

constexpr int64_t KC = 384;   // depth of a packed block (even): an NR panel of B is 48 KiB
constexpr int64_t MC = 132;   // rows of A per packed block (a multiple of MR)
constexpr int64_t NC = 2048;  // columns of B per packed block (a multiple of NR)

#define ZT_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// Two vectors of 16 values (as load16 returns them: bf16 values held as fp32) as 16 pairs:
// lo's values in the low halves, hi's in the high halves.
ZT_AVX512 inline __m512i pairs(__m512 lo, __m512 hi) {
  return _mm512_or_si512(_mm512_srli_epi32(_mm512_castps_si512(lo), 16), _mm512_castps_si512(hi));
}

// op(X)[.., k0 + 2q] and [.., k0 + 2q + 1] for q in [0, 16), where they are consecutive in
// memory (n of them valid, zero past n): 16 pairs.
ZT_AVX512 inline __m512i load_pairs(const uint16_t* src, int64_t n) {
  const __mmask32 m = n >= 32 ? ~__mmask32{0} : (__mmask32{1} << n) - 1;
  return _mm512_maskz_loadu_epi16(m, src);
}
ZT_AVX512 inline __m512i load_pairs(const float* src, int64_t n) {
  // Rounded to bf16 16 values at a time, then narrowed to their high halves.
  const __m512i a = _mm512_srli_epi32(_mm512_castps_si512(load16(src, std::min<int64_t>(n, 16))), 16);
  const __m512i b = n > 16 ? _mm512_srli_epi32(_mm512_castps_si512(load16(src + 16, n - 16)), 16)
                           : _mm512_setzero_si512();
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi32_epi16(a)), _mm512_cvtepi32_epi16(b), 1);
}

// Packs op(B)[k0 : k0+kc, j0 : j0+nc] into panels of NR columns: panel p holds (kc + 1) / 2
// rows of NR pairs, zero past the edges.
template <typename T>
ZT_AVX512 void pack_b(bool tb, const T* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t nc,
                      uint32_t* out) {
  const int64_t panels = (nc + NR - 1) / NR, kp = (kc + 1) / 2;
  for (int64_t p = 0; p < panels; ++p) {
    uint32_t* dst = out + p * kp * NR;
    const int64_t jb = j0 + p * NR, nj = std::min(NR, j0 + nc - jb);
    if (!tb) {  // rows k and k + 1 of the panel are each contiguous in B
      for (int64_t q = 0; q < kp; ++q) {
        const T* r0 = B + (k0 + 2 * q) * ldb + jb;
        const bool second = 2 * q + 1 < kc;
        for (int64_t v = 0; v < NV; ++v) {
          const int64_t n = std::max<int64_t>(0, nj - 16 * v);
          const __m512 lo = load16(r0 + 16 * v, std::min<int64_t>(n, 16));
          const __m512 hi = second ? load16(r0 + ldb + 16 * v, std::min<int64_t>(n, 16)) : _mm512_setzero_ps();
          _mm512_storeu_si512(dst + q * NR + 16 * v, pairs(lo, hi));
        }
      }
    } else {  // B[k][j] = B[j*ldb + k]: a pair is consecutive in B's row j; transpose 16 x 16
      for (int64_t jj = 0; jj < NR; jj += 16)
        for (int64_t qq = 0; qq < kp; qq += 16) {
          __m512 r[16];
          for (int64_t j = 0; j < 16; ++j)
            r[j] = jj + j < nj ? _mm512_castsi512_ps(load_pairs(B + (jb + jj + j) * ldb + k0 + 2 * qq, kc - 2 * qq))
                               : _mm512_setzero_ps();
          transpose16(r);
          for (int64_t q = 0; q < 16 && qq + q < kp; ++q)
            _mm512_storeu_ps(reinterpret_cast<float*>(dst + (qq + q) * NR + jj), r[q]);
        }
    }
  }
}

// pack_a for a transposed A (A[i][k] = A[k*lda + i]), k-major: rows k and k + 1 of A hold the
// panels' values side by side, and one 16-wide load of each gives the pairs of two panels (12
// rows), half the loads and shifts of a panel at a time (the default job's weight-gradient
// GEMMs ran 3-19% faster, bench_kernels, Zen 4).
template <typename T>
ZT_AVX512 void pack_a_transposed(const T* A, int64_t lda, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
                                 uint32_t* out) {
  const int64_t panels = (mc + MR - 1) / MR, kp = (kc + 1) / 2;
  for (int64_t p = 0; p < panels; p += 2) {
    const int64_t ib = i0 + p * MR, ni = std::min(2 * MR, i0 + mc - ib);  // rows of both panels
    uint32_t* d0 = out + p * kp * MR;
    uint32_t* d1 = d0 + kp * MR;  // the second panel, when ni > MR
    const T* src = A + k0 * lda + ib;
    for (int64_t q = 0; q < kp; ++q, src += 2 * lda) {
      const __m512 lo = load16(src, ni);
      const __m512 hi = 2 * q + 1 < kc ? load16(src + lda, ni) : _mm512_setzero_ps();
      const __m512i x = pairs(lo, hi);
      _mm512_mask_storeu_epi32(d0 + q * MR, first(MR), x);
      if (ni > MR) _mm512_mask_storeu_epi32(d1 + q * MR, first(MR), _mm512_alignr_epi32(x, x, MR));
    }
  }
}

// Packs op(A)[i0 : i0+mc, k0 : k0+kc] into panels of MR rows of pairs, zero past the edges:
// row-major (MR rows of (kc + 1) / 2 pairs) when A is, so a row packs with whole vectors;
// k-major ((kc + 1) / 2 groups of MR pairs) when A is transposed (pack_a_transposed).
template <typename T>
ZT_AVX512 void pack_a(bool ta, const T* A, int64_t lda, int64_t m_total, int64_t i0, int64_t mc, int64_t k0,
                      int64_t kc, uint32_t* out) {
  if (ta) return pack_a_transposed(A, lda, i0, mc, k0, kc, out);
  const int64_t panels = (mc + MR - 1) / MR, kp = (kc + 1) / 2;
  for (int64_t p = 0; p < panels; ++p) {
    uint32_t* dst = out + p * kp * MR;
    const int64_t ib = i0 + p * MR, ni = std::min(MR, i0 + mc - ib);
    for (int64_t r = 0; r < MR; ++r) {
      const T* src = A + (ib + r) * lda + k0;
      const bool next = ib + MR + r < m_total;  // as gemm_avx512.cpp: A has usually left L2
      for (int64_t q = 0; q < kp; q += 16) {
        if (next) prefetch(src + MR * lda + 2 * q);
        const __m512i x = r < ni ? load_pairs(src + 2 * q, kc - 2 * q) : _mm512_setzero_si512();
        _mm512_mask_storeu_epi32(dst + r * kp + q, first(kp - q), x);
      }
    }
  }
}

// The pair at p (4 bytes, any alignment) in every lane.
ZT_AVX512_BF16 inline __m512bh broadcast_pair(const char* p) {
  int32_t pair;
  std::memcpy(&pair, p, 4);
  return (__m512bh)_mm512_set1_epi32(pair);
}

// acc (MR x 16 kNV) = A's tile rows times the first 16 kNV columns of b, over `pairs` pairs of
// k and, when `odd`, one k more (whose B pair has a zero high half). Row r's pairs start at
// a_rows[r], `step` bytes apart: A where it lies (4) or a packed panel.
template <int64_t kNV, int64_t kMR>
ZT_AVX512_BF16 inline void micro_kernel(int64_t pairs, bool odd, const char* const a_rows[MR], int64_t step,
                                        const uint32_t* b, __m512 acc[MR][NV]) {
  ZT_UNROLL
  for (int64_t r = 0; r < kMR; ++r)
    ZT_UNROLL
    for (int64_t v = 0; v < kNV; ++v) acc[r][v] = _mm512_setzero_ps();
  const char* a = a_rows[0];
  int64_t off[MR];
  ZT_UNROLL
  for (int64_t r = 0; r < MR; ++r) off[r] = a_rows[r] - a;
  for (int64_t q = 0; q < pairs; ++q) {
    __m512bh bv[kNV];
    ZT_UNROLL
    for (int64_t v = 0; v < kNV; ++v) bv[v] = (__m512bh)_mm512_loadu_si512(b + 16 * v);
    ZT_UNROLL
    for (int64_t r = 0; r < kMR; ++r) {
      const __m512bh ar = broadcast_pair(a + off[r]);
      ZT_UNROLL
      for (int64_t v = 0; v < kNV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], ar, bv[v]);
    }
    b += NR;
    a += step;
  }
  if (!odd) return;
  // The last k alone: its value in both halves (not the next one, which may lie past A's end
  // and be anything); B's high half is zero.
  __m512bh bv[kNV];
  ZT_UNROLL
  for (int64_t v = 0; v < kNV; ++v) bv[v] = (__m512bh)_mm512_loadu_si512(b + 16 * v);
  ZT_UNROLL
  for (int64_t r = 0; r < kMR; ++r) {
    uint16_t x;
    std::memcpy(&x, a + off[r], 2);
    const __m512bh ar = (__m512bh)_mm512_set1_epi16(static_cast<short>(x));
    ZT_UNROLL
    for (int64_t v = 0; v < kNV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], ar, bv[v]);
  }
}

// One whole tile (mr x nr at C), not inlined (as gemm_avx512.cpp's tile_rows).
template <int64_t kNV, int64_t kMR = MR>
ZT_AVX512_BF16 __attribute__((noinline)) void tile_rows(int64_t pairs, bool odd, const char* const a_rows[MR],
                                                       int64_t step, const uint32_t* b, int64_t mr, int64_t nr,
                                                       float alpha, float beta, float* C, int64_t ldc) {
  prefetch_tile(C, ldc, mr, kNV);
  __m512 acc[MR][NV];
  micro_kernel<kNV, kMR>(pairs, odd, a_rows, step, b, acc);
  store_tile<kNV>(acc, mr, nr, alpha, beta, C, ldc);
}

ZT_AVX512_BF16 void tile_from_rows(int64_t pairs, bool odd, const char* const a_rows[MR], int64_t step,
                                   const uint32_t* b, int64_t mr, int64_t nr, float alpha, float beta, float* C,
                                   int64_t ldc) {
  switch ((nr + 15) / 16) {
    case 1: return tile_rows<1>(pairs, odd, a_rows, step, b, mr, nr, alpha, beta, C, ldc);
    case 2: return tile_rows<2>(pairs, odd, a_rows, step, b, mr, nr, alpha, beta, C, ldc);
    case 3: return tile_rows<3>(pairs, odd, a_rows, step, b, mr, nr, alpha, beta, C, ldc);
    default:
      if (mr <= 2) return tile_rows<NV, 2>(pairs, odd, a_rows, step, b, mr, nr, alpha, beta, C, ldc);
      if (mr <= 4) return tile_rows<NV, 4>(pairs, odd, a_rows, step, b, mr, nr, alpha, beta, C, ldc);
      return tile_rows<NV>(pairs, odd, a_rows, step, b, mr, nr, alpha, beta, C, ldc);
  }
}

// The AVX512-BF16 parts of the blocked GEMM (gemm_blocked.h), for bf16 and rounded-fp32
// operands only (run_blocked sends exact fp32 to gemm_avx512).
struct Avx512Bf16 {
  static constexpr int64_t MR = avx512::MR, NR = avx512::NR, KC = cpu::KC, MC = cpu::MC, NC = cpu::NC;
  static constexpr bool kFinishBlocks = false;
  static constexpr bool kKPairs = true;
  static constexpr int64_t a_panel_floats(int64_t kc) { return (kc + 1) / 2 * MR; }
  static constexpr int64_t b_panel_floats(int64_t kc) { return (kc + 1) / 2 * NR; }

  template <typename F>
  static void typed(const blocked::Operand& x, F&& f) {
    if (x.storage == blocked::Storage::bf16) return f(static_cast<const uint16_t*>(x.data));
    f(static_cast<const float*>(x.data));
  }

  ZT_AVX512 static void pack_a(const blocked::Args& g, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* out) {
    typed(g.A, [&](auto A) { cpu::pack_a(g.ta, A, g.lda, g.M, i0, mc, k0, kc, reinterpret_cast<uint32_t*>(out)); });
  }

  ZT_AVX512 static void pack_b(const blocked::Args& g, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* out) {
    typed(g.B, [&](auto B) { cpu::pack_b(g.tb, B, g.ldb, k0, kc, j0, nc, reinterpret_cast<uint32_t*>(out)); });
  }

  ZT_AVX512_BF16 static void tile(int64_t kc, const float* a, const float* b, bool ta, int64_t mr, int64_t nr,
                                  float alpha, float beta, float* C, int64_t ldc) {
    const int64_t kp = (kc + 1) / 2;
    const char* rows[MR];
    for (int64_t r = 0; r < MR; ++r)  // pack_a's layouts: k-major when A is transposed
      rows[r] = reinterpret_cast<const char*>(reinterpret_cast<const uint32_t*>(a) + (ta ? r : r * kp));
    tile_from_rows(kp, false, rows, ta ? 4 * MR : 4, reinterpret_cast<const uint32_t*>(b), mr, nr, alpha, beta, C,
                   ldc);
  }

  // A row-major bf16 A is read where it lies: each row's pairs are consecutive there.
  static bool reads_a_in_place(const blocked::Args& g) { return !g.ta && g.A.storage == blocked::Storage::bf16; }

  // Rows past mr (C's last rows) repeat row mr - 1: computed, never stored, never out of A.
  ZT_AVX512_BF16 static void tile_in_place(const blocked::Args& g, int64_t i, int64_t k0, int64_t kc, const float* b,
                                           int64_t mr, int64_t nr, float beta, float* C) {
    const auto* A = static_cast<const uint16_t*>(g.A.data);
    const char* rows[MR];
    for (int64_t r = 0; r < MR; ++r)
      rows[r] = reinterpret_cast<const char*>(A + (i + std::min(r, mr - 1)) * g.lda + k0);
    tile_from_rows(kc / 2, kc % 2 != 0, rows, 4, reinterpret_cast<const uint32_t*>(b), mr, nr, g.alpha, beta, C,
                   g.ldc);
  }
};

}  // namespace

void blocked::gemm_avx512_bf16(const blocked::Args& g) { blocked::gemm<Avx512Bf16>(g); }

}  // namespace zt::cpu
