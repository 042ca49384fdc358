// What the AVX-512 GEMM kernels share (gemm_avx512.cpp widens bf16 to fp32 for FMAs,
// gemm_avx512_bf16.cpp multiplies bf16 pairs with vdpbf16ps): the 6 x 64 tile of C in 24 zmm
// accumulators, masked bf16/fp32 loads, a 16 x 16 transpose and the tile's store.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "core/cpu/gemm_blocked.h"

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() operands that -Wmaybe-uninitialized
// reports once inlined (GCC bug 105593); they are never read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace zt::cpu::avx512 {

constexpr int64_t MR = 6;        // rows of C per micro-tile
constexpr int64_t NV = 4;        // zmm vectors per micro-tile row
constexpr int64_t NR = 16 * NV;  // columns of C per micro-tile: 6 x 4 = 24 zmm accumulators

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

}  // namespace zt::cpu::avx512
