#include "core/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/cpu/gemm.h"

#if defined(__AVX512F__)
// GCC 12 flags the _mm512_undefined_ps() inside its own masked-load and reduce intrinsics.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif

namespace zt::cpu {
namespace {

// Causal rows are processed in blocks of kBlock query rows: block [r0, r1) only needs keys
// [0, r1), so the gemms skip most of the masked upper triangle once T > kBlock.
constexpr int64_t kBlock = 64;
// Below this many flops per call a parallel region costs more than it saves (and its barrier
// spins badly on a loaded machine); results do not depend on the thread count either way.
constexpr int64_t kParallelFlops = int64_t{1} << 20;

// Softmax rows. The AVX-512 path uses masked loads for the ragged causal rows; the portable
// path is plain loops (GCC does not vectorize expf without -ffast-math, so it is slower).
#if defined(__AVX512F__)

inline __mmask16 lane_mask(int64_t j, int64_t n) {
  const int64_t left = n - j;
  return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
}

// Cephes expf: x = k ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial, 2^k by scalef;
// about 1 ulp on [-87, 88], where inputs are clamped (softmax arguments are <= 0, and e^-87
// is negligible next to the row's max term e^0).
inline __m512 exp_ps(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  x = _mm512_min_ps(x, _mm512_set1_ps(88.0f));
  const __m512 k = _mm512_roundscale_ps(
      _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
      _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fmadd_ps(k, _mm512_set1_ps(2.12194440e-4f), r);
  __m512 y = _mm512_set1_ps(1.9875691500e-4f);
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(y, k);
}

// row[0, n) <- softmax(row[0, n)); row[n, len) <- 0.
inline void causal_softmax_row(float* row, int64_t n, int64_t len) {
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  for (int64_t j = 0; j < n; j += 16)
    vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(vmax, lane_mask(j, n), row + j));
  const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
  __m512 vsum = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = lane_mask(j, n);
    const __m512 e = _mm512_maskz_mov_ps(m, exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, row + j), mx)));
    _mm512_mask_storeu_ps(row + j, m, e);
    vsum = _mm512_add_ps(vsum, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = lane_mask(j, n);
    _mm512_mask_storeu_ps(row + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + j), inv));
  }
  std::fill(row + n, row + len, 0.f);
}

// ds[0, n) <- p * (dp - <dp, p>) * scale (ds holds dp on entry); ds[n, len) <- 0.
inline void softmax_backward_row(float* ds, const float* p, int64_t n, int64_t len, float scale) {
  __m512 vdot = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = lane_mask(j, n);
    vdot = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, ds + j), _mm512_maskz_loadu_ps(m, p + j), vdot);
  }
  const __m512 dot = _mm512_set1_ps(_mm512_reduce_add_ps(vdot));
  const __m512 sc = _mm512_set1_ps(scale);
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = lane_mask(j, n);
    const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, ds + j), dot);
    _mm512_mask_storeu_ps(ds + j, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + j), d), sc));
  }
  std::fill(ds + n, ds + len, 0.f);
}

#else  // portable

inline void causal_softmax_row(float* row, int64_t n, int64_t len) {
  float mx = row[0];
  for (int64_t j = 1; j < n; ++j) mx = std::max(mx, row[j]);
  float sum = 0.f;
  for (int64_t j = 0; j < n; ++j) {
    row[j] = std::exp(row[j] - mx);
    sum += row[j];
  }
  const float inv = 1.0f / sum;
  for (int64_t j = 0; j < n; ++j) row[j] *= inv;
  std::fill(row + n, row + len, 0.f);
}

inline void softmax_backward_row(float* ds, const float* p, int64_t n, int64_t len, float scale) {
  float dot = 0.f;
  for (int64_t j = 0; j < n; ++j) dot += ds[j] * p[j];
  for (int64_t j = 0; j < n; ++j) ds[j] = p[j] * (ds[j] - dot) * scale;
  std::fill(ds + n, ds + len, 0.f);
}

#endif

}  // namespace

void attention_forward(float* out, float* probs, const float* qkv, const AttnDims& d) {
  const int64_t B = d.B, T = d.T, H = d.H, KVH = d.KVH, D = d.D;
  const int64_t W = d.qkv_width(), HD = H * D, group = H / KVH;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const bool parallel = 4 * B * H * T * T * D >= kParallelFlops;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const int64_t b = bh / H, h = bh % H, kvh = h / group;
    const float* q = qkv + b * T * W + h * D;
    const float* k = qkv + b * T * W + (H + kvh) * D;
    const float* v = qkv + b * T * W + (H + KVH + kvh) * D;
    float* p = probs + bh * T * T;
    float* o = out + b * T * HD + h * D;
    for (int64_t r0 = 0; r0 < T; r0 += kBlock) {
      const int64_t r1 = std::min(T, r0 + kBlock), rows = r1 - r0;
      // S[r0:r1, 0:r1] = scale * Q[r0:r1] K[0:r1]^T
      sgemm(false, true, rows, r1, D, scale, q + r0 * W, W, k, W, 0.f, p + r0 * T, T);
      for (int64_t t = r0; t < r1; ++t) causal_softmax_row(p + t * T, t + 1, T);
      // O[r0:r1] = P[r0:r1, 0:r1] V[0:r1]
      sgemm(false, false, rows, D, r1, 1.f, p + r0 * T, T, v, W, 0.f, o + r0 * HD, HD);
    }
  }
}

void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* probs,
                        const AttnDims& d) {
  const int64_t B = d.B, T = d.T, H = d.H, KVH = d.KVH, D = d.D;
  const int64_t W = d.qkv_width(), HD = H * D, group = H / KVH;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  // One work item per (b, kv head): the query heads of a group all add into the same dK and
  // dV columns, so they run in a fixed order on one thread (no races, thread-count-independent).
  const bool parallel = 8 * B * H * T * T * D >= kParallelFlops;
#pragma omp parallel if (parallel)
  {
    thread_local std::vector<float> scratch;
    const int64_t need = std::min(T, kBlock) * T;
    if (static_cast<int64_t>(scratch.size()) < need) scratch.resize(need);
    float* ds = scratch.data();
#pragma omp for schedule(static)
    for (int64_t bk = 0; bk < B * KVH; ++bk) {
      const int64_t b = bk / KVH, kvh = bk % KVH;
      const float* k = qkv + b * T * W + (H + kvh) * D;
      const float* v = qkv + b * T * W + (H + KVH + kvh) * D;
      float* dk = dqkv + b * T * W + (H + kvh) * D;
      float* dv = dqkv + b * T * W + (H + KVH + kvh) * D;
      for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
        const float* q = qkv + b * T * W + h * D;
        float* dq = dqkv + b * T * W + h * D;
        const float* p = probs + (b * H + h) * T * T;
        const float* go = dout + b * T * HD + h * D;
        for (int64_t r0 = 0; r0 < T; r0 += kBlock) {
          const int64_t r1 = std::min(T, r0 + kBlock), rows = r1 - r0;
          // dP[r0:r1, 0:r1] = dO[r0:r1] V[0:r1]^T, then dS in place (ld r1).
          sgemm(false, true, rows, r1, D, 1.f, go + r0 * HD, HD, v, W, 0.f, ds, r1);
          for (int64_t t = r0; t < r1; ++t)
            softmax_backward_row(ds + (t - r0) * r1, p + t * T, t + 1, r1, scale);
          // dQ[r0:r1] += dS K[0:r1];  dK[0:r1] += dS^T Q[r0:r1];  dV[0:r1] += P^T dO[r0:r1]
          sgemm(false, false, rows, D, r1, 1.f, ds, r1, k, W, 1.f, dq + r0 * W, W);
          sgemm(true, false, r1, D, rows, 1.f, ds, r1, q + r0 * W, W, 1.f, dk, W);
          sgemm(true, false, r1, D, rows, 1.f, p + r0 * T, T, go + r0 * HD, HD, 1.f, dv, W);
        }
      }
    }
  }
}

}  // namespace zt::cpu
