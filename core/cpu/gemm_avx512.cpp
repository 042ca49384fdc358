// The AVX-512 bf16 GEMM kernel (see gemm_blocked.h for the design): 6 x 64 tiles of C in 24
// zmm accumulators. We widen rather than use vdpbf16ps because on Zen 5 vdpbf16ps retires at
// about half the FLOP rate of vfmadd231ps (bench/bench_bf16_dot: ~80 vs ~170 GFLOP/s per
// core, registers only); the bf16 win on this CPU is halved operand bytes, not arithmetic.
// A is read in place (bf16 widened as it is broadcast), not packed, unless it is fp32 to be
// rounded to bf16.
#include <immintrin.h>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/cpu/gemm_blocked.h"

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() operands that -Wmaybe-uninitialized
// reports once inlined (GCC bug 105593); they are never read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace zt::cpu {
namespace {

constexpr int64_t MR = 6;        // rows of C per micro-tile
constexpr int64_t NV = 4;        // zmm vectors per micro-tile row
constexpr int64_t NR = 16 * NV;  // columns of C per micro-tile: 6 x 4 = 24 zmm accumulators
constexpr int64_t KC = 384;      // depth of a packed block: fewer passes over C (its tile is
                                 // stored after each block) than 256, 0.5-2% faster at most of
                                 // the model's shapes; an NR panel of B is 96 KiB, in L2
constexpr int64_t MC = 132;      // rows of A per packed block (a multiple of MR): 198 KiB, in L2;
                                 // 128-row weight gradients in one block
constexpr int64_t NC = 2048;     // columns of B per packed block (a multiple of NR): 2 MiB

#define ZT_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
// Loops over a tile's rows and vectors are unrolled before scalar replacement, so that the
// accumulators are indexed by constants and live in registers only (see tile_rows).
#define ZT_UNROLL _Pragma("GCC unroll 8")

ZT_AVX512 inline __mmask16 first(int64_t n) { return n >= 16 ? 0xFFFF : __mmask16((1u << n) - 1); }

// n (<= 16) bf16 values as fp32, zero past n.
ZT_AVX512 inline __m512 load16(const uint16_t* src, int64_t n) {
  const __m256i h = _mm256_mask_loadu_epi16(_mm256_setzero_si256(), first(n), src);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// n (<= 16) fp32 values rounded to bf16 (to nearest even, NaN stays a quiet NaN, exactly as
// f32_to_bf16) and held as fp32, zero past n.
ZT_AVX512 inline __m512 load16(const float* src, int64_t n) {
  const __m512 x = _mm512_maskz_loadu_ps(first(n), src);
  const __m512i u = _mm512_castps_si512(x), hi = _mm512_set1_epi32(int(0xFFFF0000u));
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF)));
  const __m512i quiet = _mm512_or_si512(u, _mm512_set1_epi32(0x00400000));
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_mask_blend_epi32(nan, rounded, quiet), hi));
}

// n (<= 16) fp32 values as they are, zero past n (an fp32 GEMM).
ZT_AVX512 inline __m512 load16(const blocked::ExactF32* src, int64_t n) {
  return _mm512_maskz_loadu_ps(first(n), reinterpret_cast<const float*>(src));
}

template <typename T>
inline void prefetch(const T* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
}

// In-place 16 x 16 fp32 transpose: r[i] element j becomes r[j] element i.
ZT_AVX512 inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {  // pairs of rows interleaved within 128-bit lanes
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // each lane now holds one column of four rows
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int c = 0; c < 4; ++c) {  // gather lane L of the four row groups into column 4L + c
    const __m512 v0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88), w0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);
    const __m512 v1 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88),
                 w1 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
    t[c] = _mm512_shuffle_f32x4(v0, v1, 0x88);
    t[8 + c] = _mm512_shuffle_f32x4(v0, v1, 0xDD);
    t[4 + c] = _mm512_shuffle_f32x4(w0, w1, 0x88);
    t[12 + c] = _mm512_shuffle_f32x4(w0, w1, 0xDD);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

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

// C tile = alpha * acc + beta * C over the valid mr x nr corner (nr <= 16 kNV; beta == 0
// never reads C).
template <int64_t kNV>
ZT_AVX512 inline void store_tile(__m512 acc[MR][NV], int64_t mr, int64_t nr, float alpha, float beta, float* C,
                                 int64_t ldc) {
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  ZT_UNROLL
  for (int64_t r = 0; r < MR; ++r) {
    if (r >= mr) break;
    float* c = C + r * ldc;
    ZT_UNROLL
    for (int64_t v = 0; v < kNV; ++v) {
      const int64_t j = v * 16;
      if (j >= nr) break;
      const __mmask16 m = first(nr - j);
      __m512 x = _mm512_mul_ps(acc[r][v], va);
      if (beta != 0.f) x = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, c + j), vb, x);
      _mm512_mask_storeu_ps(c + j, m, x);
    }
  }
}

// C's rows are far apart and usually outside L2 (a gradient being accumulated): fetch a
// tile's rows while the k loop runs, not after it.
inline void prefetch_tile(const float* C, int64_t ldc, int64_t mr, int64_t vectors) {
  for (int64_t r = 0; r < mr; ++r)
    for (int64_t v = 0; v < vectors; ++v) prefetch(C + r * ldc + 16 * v);
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

  // bf16 and exact fp32 A are read where they lie: the micro-kernel's broadcasts fetch each
  // value of a panel once per tile either way, so packing A (a widening copy, or for a
  // transposed A a gather of MR values from rows lda apart) was a pass of its own. In place,
  // the default job's bf16 weight gradients (TN) ran 5-13% faster and its dinp (NN) 3-5% (2
  // threads, Zen 5), its bf16 step 2-4%. fp32 to be rounded to bf16 is still packed, so that
  // it is rounded once.
  static bool reads_a_in_place(const blocked::Args& g) {
    return g.A.storage == blocked::Storage::f32 || g.A.storage == blocked::Storage::bf16;
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
