// The AVX-512 GEMM kernel (see gemm_blocked.h for the design): 6 x 64 tiles of C in 24 zmm
// accumulators, fp32 FMAs on bf16 operands widened to fp32 (or on fp32 operands). Where the
// CPU's vdpbf16ps is the faster way (Zen 4), bf16 GEMMs run gemm_avx512_bf16.cpp instead; on
// Zen 5 vdpbf16ps retired at about half the FLOP rate of vfmadd231ps (bench/bench_bf16_dot:
// ~80 vs ~170 GFLOP/s per core, registers only), and there this kernel's bf16 win is halved
// operand bytes, not arithmetic. A bf16 A is read in place (widened as it is broadcast) on
// AMD and packed on Intel (Bf16ARead, gemm.h); fp32 to be rounded to bf16 is packed.
#include "core/cpu/gemm_avx512.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace zt::cpu {
namespace {

using namespace avx512;

constexpr int64_t KC = 384;      // depth of a packed block: fewer passes over C (its tile is
                                 // stored after each block) than 256, 0.5-2% faster at most of
                                 // the model's shapes; an NR panel of B is 96 KiB, in L2
constexpr int64_t MC = 132;      // rows of A per packed block (a multiple of MR): 198 KiB, in L2;
                                 // 128-row weight gradients in one block
constexpr int64_t NC = 2048;     // columns of B per packed block (a multiple of NR): 2 MiB

// Packs op(B)[k0 : k0+kc, j0 : j0+nc] as fp32 into panels of NR columns: panel p holds kc
// rows of NR values, zero past the edges.
template <typename T>
ZT_AVX512 void pack_b(bool tb, const T* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t nc,
                      float* out) {
  const int64_t panels = (nc + NR - 1) / NR;
  for (int64_t p = 0; p < panels; ++p) {
    float* dst = out + p * kc * NR;
    const int64_t jb = j0 + p * NR, nj = std::min(NR, j0 + nc - jb);
    if (!tb) {  // row k of the panel is contiguous in B
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t v = 0; v < NV; ++v)
          _mm512_storeu_ps(dst + k * NR + 16 * v,
                           v * 16 < nj ? load16(B + (k0 + k) * ldb + jb + 16 * v, nj - 16 * v) : _mm512_setzero_ps());
    } else {  // B[k][j] = B[j*ldb + k]: transpose 16 x 16 blocks of source rows
      for (int64_t jj = 0; jj < NR; jj += 16)
        for (int64_t kk = 0; kk < kc; kk += 16) {
          __m512 r[16];
          for (int64_t j = 0; j < 16; ++j)
            r[j] = jj + j < nj ? load16(B + (jb + jj + j) * ldb + k0 + kk, kc - kk) : _mm512_setzero_ps();
          transpose16(r);
          for (int64_t k = 0; k < 16 && kk + k < kc; ++k) _mm512_storeu_ps(dst + (kk + k) * NR + jj, r[k]);
        }
    }
  }
}

// Packs op(A)[i0 : i0+mc, k0 : k0+kc] for a transposed A (A[i][k] = A[k*lda + i], so each
// row of A holds consecutive i) k-major: kc groups of MR values per panel, zero past the edges.
// Pairs of whole panels take one 16-wide load per row of A for both (12 values) and an 8-wide
// store each, in rising address order: each store's 2 extra floats are overwritten by the
// next row's (a_pack has slack past the last panel). That is half the cost per value of a
// panel at a time with 16-wide loads and stores (6 against 12 cycles per 16 values on Zen 5),
// which took ~10% of a weight-gradient GEMM with N = 128.
template <typename T>
ZT_AVX512 void pack_a_transposed(const T* A, int64_t lda, int64_t m_total, int64_t i0, int64_t mc, int64_t k0,
                                 int64_t kc, float* out) {
  const int64_t panels = (mc + MR - 1) / MR;
  int64_t p = 0;
  for (; p + 2 <= panels && MR * (p + 2) <= mc && i0 + MR * p + 16 <= m_total; p += 2) {
    float* d0 = out + p * kc * MR;
    float* d1 = d0 + kc * MR;
    const T* src = A + k0 * lda + i0 + MR * p;
    for (int64_t k = 0; k < kc; ++k, src += lda) {
      prefetch(src + 16);  // the next pair's values: A has usually left L2
      const __m512 v = load16(src, 16);
      const __m512i vi = _mm512_castps_si512(v);
      const __m256 second = _mm512_castps512_ps256(_mm512_castsi512_ps(_mm512_alignr_epi32(vi, vi, MR)));
      // The first panel's last row would spill into the second's first: six lanes there.
      if (k + 1 < kc)
        _mm256_storeu_ps(d0 + k * MR, _mm512_castps512_ps256(v));
      else
        _mm256_mask_storeu_ps(d0 + k * MR, (1u << MR) - 1, _mm512_castps512_ps256(v));
      _mm256_storeu_ps(d1 + k * MR, second);
    }
  }
  for (; p < panels; ++p) {  // an odd or partial panel, or one near A's end: masked moves
    const int64_t ib = i0 + p * MR, ni = std::min(MR, i0 + mc - ib);
    for (int64_t k = 0; k < kc; ++k)
      _mm512_mask_storeu_ps(out + p * kc * MR + k * MR, (1u << MR) - 1, load16(A + (k0 + k) * lda + ib, ni));
  }
}

// Packs op(A)[i0 : i0+mc, k0 : k0+kc] (of op(A)'s m_total rows) as fp32 into panels of MR
// rows, zero past the edges, in whichever order is contiguous in the source: k-major (kc
// groups of MR values) when A is transposed, row-major (MR rows of kc values) when not.
template <typename T>
ZT_AVX512 void pack_a(bool ta, const T* A, int64_t lda, int64_t m_total, int64_t i0, int64_t mc, int64_t k0,
                      int64_t kc, float* out) {
  if (ta) return pack_a_transposed(A, lda, m_total, i0, mc, k0, kc, out);
  const int64_t panels = (mc + MR - 1) / MR;
  for (int64_t p = 0; p < panels; ++p) {
    float* dst = out + p * kc * MR;
    const int64_t ib = i0 + p * MR, ni = std::min(MR, i0 + mc - ib);
    for (int64_t r = 0; r < MR; ++r) {
      const T* src = A + (ib + r) * lda + k0;
      // Each panel prefetches what the next one reads first: A has usually left L2 (an
      // activation or its gradient), and packing stalled on it for ~10% of a GEMM with N = 128.
      const bool next = ib + MR + r < m_total;
      for (int64_t k = 0; k < kc; k += 16) {
        if (next) prefetch(src + MR * lda + k);
        _mm512_mask_storeu_ps(dst + r * kc + k, first(kc - k), r < ni ? load16(src + k, kc - k) : _mm512_setzero_ps());
      }
    }
  }
}

ZT_AVX512 inline __m512 broadcast(const float* p) { return _mm512_set1_ps(*p); }
// A bf16 value in every lane as fp32: its 16 bits in both halves of each lane (one
// vpbroadcastw from memory), the low half cleared.
ZT_AVX512 inline __m512 broadcast(const uint16_t* p) {
  const __m512i both = _mm512_set1_epi16(static_cast<short>(*p));
  return _mm512_castsi512_ps(_mm512_and_si512(both, _mm512_set1_epi32(int(0xFFFF0000u))));
}

// acc (MR x 16 kNV) = A's tile rows times the first 16 kNV columns of b (kc x NR). Row r of
// the tile starts at a_rows[r] and its k-th value is k * ks further: a packed panel (k-major:
// a + r, ks = MR; row-major: a + r * kc, ks = 1) or A where it lies (row-major: ks = 1;
// transposed: ks = lda). A panel narrower than NR (C's last columns) takes the narrowest kNV
// that covers it: the LM head's 65 columns are one full panel and one of a single column,
// which at kNV = 4 cost a whole panel's FMAs. Likewise only the first kMR rows are computed: a
// last panel of 1-2 or 3-4 rows (128 = 21 x 6 + 2) took a whole tile's FMAs, 3% of a 128-row
// weight gradient (kMR and MC = 132 made those 4-7% faster, 2 threads, Zen 5).
template <int64_t kNV, typename T, int64_t kMR = MR>
ZT_AVX512 inline void micro_kernel(int64_t kc, const T* const a_rows[MR], int64_t ks, const float* b,
                                   __m512 acc[MR][NV]) {
  ZT_UNROLL
  for (int64_t r = 0; r < kMR; ++r)
    ZT_UNROLL
    for (int64_t v = 0; v < kNV; ++v) acc[r][v] = _mm512_setzero_ps();
  const T* a = a_rows[0];
  int64_t off[MR];
  ZT_UNROLL
  for (int64_t r = 0; r < MR; ++r) off[r] = a_rows[r] - a;
  for (int64_t k = 0; k < kc; ++k) {
    __m512 bv[kNV];
    ZT_UNROLL
    for (int64_t v = 0; v < kNV; ++v) bv[v] = _mm512_loadu_ps(b + 16 * v);
    ZT_UNROLL
    for (int64_t r = 0; r < kMR; ++r) {
      const __m512 ar = broadcast(a + off[r]);
      ZT_UNROLL
      for (int64_t v = 0; v < kNV; ++v) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
    }
    b += NR;
    a += ks;
  }
}

// micro_kernel<NV> for a transposed bf16 A read in place, whose 6 rows lie side by side at
// each k: each pair of rows is one 32-bit broadcast (a plain load), row 2j's value shifted up
// into the high half and row 2j + 1's with the low half cleared, where micro_kernel
// broadcasts each 16-bit value (a load and a shuffle) and clears its low half. The default
// job's weight gradients (TN, bench_kernels) ran ~2% faster, its bf16 step 0-1%.
template <int64_t kNV>
ZT_AVX512 inline void micro_kernel_pairs(int64_t kc, const uint16_t* a, int64_t lda, const float* b,
                                         __m512 acc[MR][NV]) {
  ZT_UNROLL
  for (int64_t r = 0; r < MR; ++r)
    ZT_UNROLL
    for (int64_t v = 0; v < kNV; ++v) acc[r][v] = _mm512_setzero_ps();
  const __m512i hi = _mm512_set1_epi32(int(0xFFFF0000u));
  for (int64_t k = 0; k < kc; ++k) {
    __m512 bv[kNV];
    ZT_UNROLL
    for (int64_t v = 0; v < kNV; ++v) bv[v] = _mm512_loadu_ps(b + 16 * v);
    ZT_UNROLL
    for (int64_t j = 0; j < MR / 2; ++j) {
      int32_t pair;
      std::memcpy(&pair, a + 2 * j, 4);
      const __m512i both = _mm512_set1_epi32(pair);
      const __m512 even = _mm512_castsi512_ps(_mm512_slli_epi32(both, 16));
      const __m512 odd = _mm512_castsi512_ps(_mm512_and_si512(both, hi));
      ZT_UNROLL
      for (int64_t v = 0; v < kNV; ++v) acc[2 * j][v] = _mm512_fmadd_ps(even, bv[v], acc[2 * j][v]);
      ZT_UNROLL
      for (int64_t v = 0; v < kNV; ++v) acc[2 * j + 1][v] = _mm512_fmadd_ps(odd, bv[v], acc[2 * j + 1][v]);
    }
    b += NR;
    a += lda;
  }
}


// One whole tile: C (mr x nr at C) = alpha * A's tile rows times the b panel + beta * C,
// at kNV vectors wide and kMR rows deep. Not inlined, so that only the tile's accumulators,
// b's vectors and the broadcast are live in the k loop: inlined into gemm_serial, values of
// the loops around it took registers, one accumulator was spilled to the stack inside the k
// loop, and the store (indexing by the runtime mr) kept all 24 in memory around it.
template <int64_t kNV, typename T, int64_t kMR = MR>
ZT_AVX512 __attribute__((noinline)) void tile_rows(int64_t kc, const T* const a_rows[MR], int64_t ks, const float* b,
                                                  int64_t mr, int64_t nr, float alpha, float beta, float* C,
                                                  int64_t ldc) {
  prefetch_tile(C, ldc, mr, kNV);
  __m512 acc[MR][NV];
  micro_kernel<kNV, T, kMR>(kc, a_rows, ks, b, acc);
  store_tile<kNV>(acc, mr, nr, alpha, beta, C, ldc);
}

// tile_rows at the width and depth the tile needs.
template <typename T>
ZT_AVX512 inline void tile_from_rows(int64_t kc, const T* const a_rows[MR], int64_t ks, const float* b, int64_t mr,
                                     int64_t nr, float alpha, float beta, float* C, int64_t ldc) {
  switch ((nr + 15) / 16) {
    case 1: return tile_rows<1>(kc, a_rows, ks, b, mr, nr, alpha, beta, C, ldc);
    case 2: return tile_rows<2>(kc, a_rows, ks, b, mr, nr, alpha, beta, C, ldc);
    case 3: return tile_rows<3>(kc, a_rows, ks, b, mr, nr, alpha, beta, C, ldc);
    default:
      if (mr <= 2) return tile_rows<NV, T, 2>(kc, a_rows, ks, b, mr, nr, alpha, beta, C, ldc);
      if (mr <= 4) return tile_rows<NV, T, 4>(kc, a_rows, ks, b, mr, nr, alpha, beta, C, ldc);
      return tile_rows<NV>(kc, a_rows, ks, b, mr, nr, alpha, beta, C, ldc);
  }
}

// A whole 6-row, full-width tile of a transposed bf16 A read in place by pairs of rows
// (micro_kernel_pairs); not inlined, as tile_rows.
ZT_AVX512 __attribute__((noinline)) void tile_pairs(int64_t kc, const uint16_t* a, int64_t lda, const float* b,
                                                   int64_t nr, float alpha, float beta, float* C, int64_t ldc) {
  prefetch_tile(C, ldc, MR, NV);
  __m512 acc[MR][NV];
  micro_kernel_pairs<NV>(kc, a, lda, b, acc);
  store_tile<NV>(acc, MR, nr, alpha, beta, C, ldc);
}

// The AVX-512 parts of the blocked GEMM (gemm_blocked.h).
struct Avx512 {
  static constexpr int64_t MR = cpu::MR, NR = cpu::NR, KC = cpu::KC, MC = cpu::MC, NC = cpu::NC;
  static constexpr bool kFinishBlocks = false;  // a C block (MC x NC) can exceed L2 here

  ZT_AVX512 static void pack_a(const blocked::Args& g, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* out) {
    blocked::with_typed(g.A, [&](auto A) { cpu::pack_a(g.ta, A, g.lda, g.M, i0, mc, k0, kc, out); });
  }

  ZT_AVX512 static void pack_b(const blocked::Args& g, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* out) {
    blocked::with_typed(g.B, [&](auto B) { cpu::pack_b(g.tb, B, g.ldb, k0, kc, j0, nc, out); });
  }

  ZT_AVX512 static void tile(int64_t kc, const float* a, const float* b, bool ta, int64_t mr, int64_t nr, float alpha,
                             float beta, float* C, int64_t ldc) {
    const float* rows[MR];
    for (int64_t r = 0; r < MR; ++r) rows[r] = ta ? a + r : a + r * kc;  // pack_a's layouts
    tile_from_rows(kc, rows, ta ? MR : 1, b, mr, nr, alpha, beta, C, ldc);
  }

  // Exact fp32 A, and bf16 A where the CPU widens it cheaply (Bf16ARead, gemm.h), are read
  // where they lie: the micro-kernel's broadcasts fetch each value of a panel once per tile
  // either way, so packing A (a widening copy, or for a transposed A a gather of MR values
  // from rows lda apart) was a pass of its own. In place, the default job's bf16 weight
  // gradients (TN) ran 5-13% faster and its dinp (NN) 3-5% (2 threads, Zen 5), its bf16 step
  // 2-4%. fp32 to be rounded to bf16 is always packed, so that it is rounded once.
  static bool reads_a_in_place(const blocked::Args& g) {
    if (g.A.storage == blocked::Storage::bf16) return avx512_bf16_a_read() == Bf16ARead::in_place;
    return g.A.storage == blocked::Storage::f32;
  }

  ZT_AVX512 static void tile_in_place(const blocked::Args& g, int64_t i, int64_t k0, int64_t kc, const float* b,
                                      int64_t mr, int64_t nr, float beta, float* C) {
    if (g.A.storage == blocked::Storage::bf16)
      return tile_in_place_typed(static_cast<const uint16_t*>(g.A.data), g, i, k0, kc, b, mr, nr, beta, C);
    tile_in_place_typed(static_cast<const float*>(g.A.data), g, i, k0, kc, b, mr, nr, beta, C);
  }

  // Rows past mr (C's last rows) repeat row mr - 1: computed, never stored, never out of A.
  template <typename T>
  ZT_AVX512 static void tile_in_place_typed(const T* A, const blocked::Args& g, int64_t i, int64_t k0, int64_t kc,
                                            const float* b, int64_t mr, int64_t nr, float beta, float* C) {
    if constexpr (std::is_same_v<T, uint16_t>) {  // a transposed bf16 A: a whole tile by pairs of rows
      if (g.ta && mr == MR && nr > 16 * (NV - 1)) {
        return tile_pairs(kc, A + i + k0 * g.lda, g.lda, b, nr, g.alpha, beta, C, g.ldc);
      }
    }
    const int64_t rs = g.ta ? 1 : g.lda, ks = g.ta ? g.lda : 1;
    const T* rows[MR];
    for (int64_t r = 0; r < MR; ++r) rows[r] = A + (i + std::min(r, mr - 1)) * rs + k0 * ks;
    tile_from_rows(kc, rows, ks, b, mr, nr, g.alpha, beta, C, g.ldc);
  }
};

}  // namespace

void blocked::gemm_avx512(const blocked::Args& g) { blocked::gemm<Avx512>(g); }

}  // namespace zt::cpu
