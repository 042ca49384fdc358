// The AVX2 + FMA bf16 GEMM kernel (see gemm_blocked.h for the design): 6 x 16 tiles of C in
// 12 ymm accumulators, two B vectors and one broadcast A value: 15 of the 16 registers, and
// enough independent FMAs to cover their latency on two FMA pipes (Zen 3, Haswell on).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "core/cpu/gemm_blocked.h"

namespace zt::cpu {
namespace {

constexpr int64_t MR = 6;       // rows of C per micro-tile
constexpr int64_t NV = 2;       // ymm vectors per micro-tile row
constexpr int64_t NR = 8 * NV;  // columns of C per micro-tile
constexpr int64_t KC = 256;     // depth of a packed block: an NR panel of B is 16 KiB, in L1
constexpr int64_t MC = 72;      // rows of A per packed block (a multiple of MR): 72 KiB, in L2
constexpr int64_t NC = 256;     // columns of B per packed block (a multiple of NR): 256 KiB,
                                // and a 256-row C block of NC columns stays in L2 across K blocks

#define ZT_AVX2 __attribute__((target("avx2,fma")))

// Lanes [0, n) set (n <= 8), for maskload/maskstore.
ZT_AVX2 inline __m256i first(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(std::min<int64_t>(n, 8))), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// n (<= 8) bf16 values as fp32, zero past n.
ZT_AVX2 inline __m256 load8(const uint16_t* src, int64_t n) {
  __m128i h;
  if (n >= 8) {
    h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
  } else {  // no 16-bit masked load before AVX-512: the ragged edge goes through a copy
    alignas(16) uint16_t part[8] = {};
    for (int64_t i = 0; i < n; ++i) part[i] = src[i];
    h = _mm_load_si128(reinterpret_cast<const __m128i*>(part));
  }
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// n (<= 8) fp32 values rounded to bf16 (to nearest even, NaN stays a quiet NaN, exactly as
// f32_to_bf16) and held as fp32, zero past n.
ZT_AVX2 inline __m256 load8(const float* src, int64_t n) {
  const __m256 x = n >= 8 ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, first(n));
  const __m256i u = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF)));
  const __m256i quiet = _mm256_or_si256(u, _mm256_set1_epi32(0x00400000));
  const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  const __m256i r = _mm256_castps_si256(
      _mm256_blendv_ps(_mm256_castsi256_ps(rounded), _mm256_castsi256_ps(quiet), nan));
  return _mm256_castsi256_ps(_mm256_and_si256(r, _mm256_set1_epi32(int(0xFFFF0000u))));
}

// n (<= 8) fp32 values as they are, zero past n (an fp32 GEMM).
ZT_AVX2 inline __m256 load8(const blocked::ExactF32* src, int64_t n) {
  const float* f = reinterpret_cast<const float*>(src);
  return n >= 8 ? _mm256_loadu_ps(f) : _mm256_maskload_ps(f, first(n));
}

// In-place 8 x 8 fp32 transpose: r[i] element j becomes r[j] element i.
ZT_AVX2 inline void transpose8(__m256 r[8]) {
  __m256 t[8], s[8];
  for (int i = 0; i < 8; i += 2) {  // pairs of rows interleaved within 128-bit lanes
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {  // each lane now holds one column of four rows
    s[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int c = 0; c < 4; ++c) {  // low lanes of rows 0-3 with those of rows 4-7, then high
    r[c] = _mm256_permute2f128_ps(s[c], s[4 + c], 0x20);
    r[4 + c] = _mm256_permute2f128_ps(s[c], s[4 + c], 0x31);
  }
}

// Packs op(B)[k0 : k0+kc, j0 : j0+nc] as fp32 into panels of NR columns: panel p holds kc
// rows of NR values, zero past the edges.
template <typename T>
ZT_AVX2 void pack_b(bool tb, const T* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* out) {
  const int64_t panels = (nc + NR - 1) / NR;
  for (int64_t p = 0; p < panels; ++p) {
    float* dst = out + p * kc * NR;
    const int64_t jb = j0 + p * NR, nj = std::min(NR, j0 + nc - jb);
    if (!tb) {  // row k of the panel is contiguous in B
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t v = 0; v < NV; ++v)
          _mm256_storeu_ps(dst + k * NR + 8 * v,
                           v * 8 < nj ? load8(B + (k0 + k) * ldb + jb + 8 * v, nj - 8 * v) : _mm256_setzero_ps());
    } else {  // B[k][j] = B[j*ldb + k]: transpose 8 x 8 blocks of source rows
      for (int64_t jj = 0; jj < NR; jj += 8)
        for (int64_t kk = 0; kk < kc; kk += 8) {
          __m256 r[8];
          for (int64_t j = 0; j < 8; ++j)
            r[j] = jj + j < nj ? load8(B + (jb + jj + j) * ldb + k0 + kk, kc - kk) : _mm256_setzero_ps();
          transpose8(r);
          for (int64_t k = 0; k < 8 && kk + k < kc; ++k) _mm256_storeu_ps(dst + (kk + k) * NR + jj, r[k]);
        }
    }
  }
}

template <typename T>
inline void prefetch(const T* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
}

// Packs op(A)[i0 : i0+mc, k0 : k0+kc] as fp32 into k-major panels of MR rows (kc groups of
// MR values, zero past the edges), so the micro-kernel broadcasts from one stream. A row-major
// A goes through 8 x 8 transposes of 8 k values of the panel's rows (two of them zero).
template <typename T>
ZT_AVX2 void pack_a(bool ta, const T* A, int64_t lda, int64_t m_total, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
                    float* out) {
  const int64_t panels = (mc + MR - 1) / MR;
  const __m256i mr_mask = first(MR);
  for (int64_t p = 0; p < panels; ++p) {
    float* dst = out + p * kc * MR;
    const int64_t ib = i0 + p * MR, ni = std::min(MR, i0 + mc - ib);
    // Each panel prefetches what the next one reads first (as the AVX-512 kernel does: A has
    // usually left L2, and packing stalls on it).
    if (ta && ni == MR && ib + 8 <= m_total) {
      // Full-width loads and stores in rising address order, each store's 2 extra floats
      // overwritten by the next (a_pack has slack for the last): masked moves cost more.
      for (int64_t k = 0; k < kc; ++k) {
        const T* src = A + (k0 + k) * lda + ib;
        prefetch(src + 16);
        _mm256_storeu_ps(dst + k * MR, load8(src, 8));
      }
    } else if (ta) {  // A[i][k] = A[k*lda + i]: row k of A holds the panel's MR values
      for (int64_t k = 0; k < kc; ++k) _mm256_maskstore_ps(dst + k * MR, mr_mask, load8(A + (k0 + k) * lda + ib, ni));
    } else {
      const int64_t next = std::clamp<int64_t>(m_total - (ib + MR), 0, MR);  // rows of the next panel
      for (int64_t k = 0; k < kc; k += 8) {
        if (k % 16 == 0)
          for (int64_t i = 0; i < next; ++i) prefetch(A + (ib + MR + i) * lda + k0 + k);
        __m256 r[8];
        for (int64_t i = 0; i < 8; ++i)
          r[i] = i < ni ? load8(A + (ib + i) * lda + k0 + k, kc - k) : _mm256_setzero_ps();
        transpose8(r);  // r[kk] = the panel's rows at k + kk
        // Unmasked: lanes MR.. hold zero rows, overwritten by the next store (or slack).
        for (int64_t kk = 0; kk < 8 && k + kk < kc; ++kk) _mm256_storeu_ps(dst + (k + kk) * MR, r[kk]);
      }
    }
  }
}

// acc (MR x NR) = a (MR x kc, k-major: a[k*MR + r]) times b (kc x NR).
ZT_AVX2 inline void micro_kernel(int64_t kc, const float* a, const float* b, __m256 acc[MR][NV]) {
#pragma GCC unroll 6
  for (int64_t r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int64_t v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m256 bv[NV];
#pragma GCC unroll 2
    for (int64_t v = 0; v < NV; ++v) bv[v] = _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 6
    for (int64_t r = 0; r < MR; ++r) {
      const __m256 ar = _mm256_broadcast_ss(a + k * MR + r);
#pragma GCC unroll 2
      for (int64_t v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(ar, bv[v], acc[r][v]);
    }
    b += NR;
  }
}

// C tile = alpha * acc + beta * C over the valid mr x nr corner (beta == 0 never reads C).
// The loops run to the constant MR and NV, fully unrolled, so every acc index is a constant
// and the accumulators stay in registers through the micro-kernel (a variable index would
// keep acc in memory and store it on every k step).
ZT_AVX2 inline void store_tile(__m256 acc[MR][NV], int64_t mr, int64_t nr, float alpha, float beta, float* C,
                               int64_t ldc) {
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
  for (int64_t r = 0; r < MR; ++r) {
    if (r >= mr) break;
    float* c = C + r * ldc;
#pragma GCC unroll 2
    for (int64_t v = 0; v < NV; ++v) {
      const int64_t j = v * 8;
      if (j >= nr) break;
      __m256 x = _mm256_mul_ps(acc[r][v], va);
      if (nr - j >= 8) {
        if (beta != 0.f) x = _mm256_fmadd_ps(_mm256_loadu_ps(c + j), vb, x);
        _mm256_storeu_ps(c + j, x);
      } else {
        const __m256i m = first(nr - j);
        if (beta != 0.f) x = _mm256_fmadd_ps(_mm256_maskload_ps(c + j, m), vb, x);
        _mm256_maskstore_ps(c + j, m, x);
      }
    }
  }
}

// The AVX2 parts of the blocked GEMM (gemm_blocked.h).
struct Avx2 {
  static constexpr int64_t MR = cpu::MR, NR = cpu::NR, KC = cpu::KC, MC = cpu::MC, NC = cpu::NC;
  // The epilogue on each finished MC x NC block (in L2) rather than on each 16-wide tile,
  // whose short rows cost more in loop overhead than the block's L1 misses: the default job's
  // step 0.5-1% faster on Zen 3 (5 of 5 alternating runs, fp32 and bf16).
  static constexpr bool kFinishBlocks = true;

  ZT_AVX2 static void pack_a(const blocked::Args& g, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* out) {
    blocked::with_typed(g.A, [&](auto A) { cpu::pack_a(g.ta, A, g.lda, g.M, i0, mc, k0, kc, out); });
  }

  ZT_AVX2 static void pack_b(const blocked::Args& g, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* out) {
    blocked::with_typed(g.B, [&](auto B) { cpu::pack_b(g.tb, B, g.ldb, k0, kc, j0, nc, out); });
  }

  ZT_AVX2 static void tile(int64_t kc, const float* a, const float* b, bool ta, int64_t mr, int64_t nr, float alpha,
                           float beta, float* C, int64_t ldc) {
    __m256 acc[MR][NV];
    micro_kernel(kc, a, b, acc);
    store_tile(acc, mr, nr, alpha, beta, C, ldc);
  }
};

}  // namespace

void blocked::gemm_avx2(const blocked::Args& g) { blocked::gemm<Avx2>(g); }

}  // namespace zt::cpu
