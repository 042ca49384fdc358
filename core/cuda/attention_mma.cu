// Causal attention on tensor cores for bf16 q/k/v and head dims 64 and 128: FlashAttention-2's
// tiling (blocks of 64 rows, 4 warps of 16) with WMMA 16x16x16 bf16 fragments and f32
// accumulation. Scores go through a per-warp shared-memory tile for the online softmax (WMMA
// fragments have no defined element layout); P and dS are rounded to bf16 for the second
// product, dO on staging, as FlashAttention does. The normalizer l and the log-sum-exp sum the
// unrounded probabilities, so lse matches the f32 kernels. No atomics: dQ and dK/dV are separate
// passes over the other side, every gradient a fixed-order sum (deterministic). The plain
// kernels in attention.cu cover f32, f16 and the other head dims.
//
// The default for bf16 at those head dims since their first GPU run (H200: GPT-2 124M's step
// 6.6x faster than on the plain kernels); ZT_CUDA_ATTENTION=plain picks the plain kernels, to
// compare the two or to rule this one out. Any other value is an error naming the variable.
#include <cuda_bf16.h>
#include <mma.h>

#include <cmath>

#include "core/cuda/attention_layout.cuh"
#include "core/cuda/attention_mma.h"
#include "core/cuda/common.cuh"

namespace zt::cuda {

namespace {
using namespace nvcuda;
using bf16 = __nv_bfloat16;

constexpr int kWarps = 4;
constexpr int kRows = 16 * kWarps;  // rows of a block's own side (queries, or keys in dK/dV)
constexpr int kCols = 64;           // rows of the other side per tile (one tile = 4 fragments)
constexpr int kThreads = 32 * kWarps;
static_assert(kRows == kCols, "causal tile skipping assumes square, aligned tiles");

using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major>;
using FragBt = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major>;  // B = X^T, X row-major
using FragB = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major>;
using FragC = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

// Shared-memory strides (elements), padded off the bank period; every region a multiple of
// 128 bytes so that each stays 32-byte aligned for WMMA.
template <int D>
struct Strides {
  static constexpr int tile = D + 8;                            // bf16 tile rows
  static constexpr int f32 = (D > kCols ? D : kCols) + 4;       // per-warp f32 scratch rows
  static constexpr int prob = kCols + 8;                        // per-warp bf16 P / dS rows
  static constexpr size_t tile_bytes = size_t{kRows} * tile * sizeof(bf16);
  static constexpr size_t f32_bytes = size_t{16} * f32 * sizeof(float) * kWarps;
  static constexpr size_t prob_bytes = size_t{16} * prob * sizeof(bf16) * kWarps;
  static_assert(tile_bytes % 128 == 0 && f32_bytes % 128 == 0 && prob_bytes % 128 == 0);
};

// Rows [r0, r0 + kRows) of one head (row t at src[base + t * stride]) into dst, zero past T.
template <int D>
__device__ __forceinline__ void stage(bf16* dst, const bf16* src, int64_t base, int64_t stride, int64_t r0,
                                      int64_t T) {
  constexpr int chunks = D / 8;  // 16-byte pieces per row
  for (int e = threadIdx.x; e < kRows * chunks; e += kThreads) {
    const int r = e / chunks, c = (e % chunks) * 8;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (r0 + r < T) v = *reinterpret_cast<const uint4*>(src + base + (r0 + r) * stride + c);
    *reinterpret_cast<uint4*>(dst + r * Strides<D>::tile + c) = v;
  }
}

// Keys and values [j0, j0 + kCols) of kv head g into ks and vs, by the whole block, between
// barriers (the previous tile's readers are done before, every reader waits for it after).
template <int D>
__device__ __forceinline__ void stage_kv(bf16* ks, bf16* vs, const bf16* qkv, const AttnLayout& L, int64_t b,
                                         int64_t g, int64_t j0) {
  __syncthreads();
  stage<D>(ks, qkv, L.k(b, 0, g), L.W, j0, L.T);
  stage<D>(vs, qkv, L.v(b, 0, g), L.W, j0, L.T);
  __syncthreads();
}

// As stage, from f32 rows rounded to bf16 (dO).
template <int D>
__device__ __forceinline__ void stage_rounded(bf16* dst, const float* src, int64_t base, int64_t stride,
                                              int64_t r0, int64_t T) {
  constexpr int chunks = D / 8;
  for (int e = threadIdx.x; e < kRows * chunks; e += kThreads) {
    const int r = e / chunks, c = (e % chunks) * 8;
    float4 a = make_float4(0.f, 0.f, 0.f, 0.f), b = a;
    if (r0 + r < T) {
      const float4* p = reinterpret_cast<const float4*>(src + base + (r0 + r) * stride + c);
      a = p[0];
      b = p[1];
    }
    __nv_bfloat162 h[4] = {__floats2bfloat162_rn(a.x, a.y), __floats2bfloat162_rn(a.z, a.w),
                           __floats2bfloat162_rn(b.x, b.y), __floats2bfloat162_rn(b.z, b.w)};
    *reinterpret_cast<uint4*>(dst + r * Strides<D>::tile + c) = *reinterpret_cast<const uint4*>(h);
  }
}

// out (16 x kCols f32, row stride Strides<D>::f32) = A (16 x D rows of a) times B^T, B the
// kCols rows of b: the score-like products (Q K^T, dO V^T, K Q^T, V dO^T).
template <int D>
__device__ __forceinline__ void product_nt(float* out, const bf16* a, const bf16* b) {
  constexpr int ld = Strides<D>::tile;
#pragma unroll
  for (int n = 0; n < kCols / 16; ++n) {
    FragC c;
    wmma::fill_fragment(c, 0.f);
#pragma unroll
    for (int k = 0; k < D / 16; ++k) {
      FragA fa;
      FragBt fb;
      wmma::load_matrix_sync(fa, a + k * 16, ld);
      wmma::load_matrix_sync(fb, b + n * 16 * ld + k * 16, ld);
      wmma::mma_sync(c, fa, fb, c);
    }
    wmma::store_matrix_sync(out + n * 16, c, Strides<D>::f32, wmma::mem_row_major);
  }
}

// acc[n] += P (16 x kCols bf16, row stride Strides<D>::prob) times X (kCols rows of a tile).
template <int D>
__device__ __forceinline__ void accumulate_pn(FragC (&acc)[D / 16], const bf16* p, const bf16* x) {
#pragma unroll
  for (int k = 0; k < kCols / 16; ++k) {
    FragA fa;
    wmma::load_matrix_sync(fa, p + k * 16, Strides<D>::prob);
#pragma unroll
    for (int n = 0; n < D / 16; ++n) {
      FragB fb;
      wmma::load_matrix_sync(fb, x + k * 16 * Strides<D>::tile + n * 16, Strides<D>::tile);
      wmma::mma_sync(acc[n], fa, fb, acc[n]);
    }
  }
}

// grid (B*H, ceil(T / kRows)); the last query tiles (the most key tiles) start first.
template <int D>
__global__ void __launch_bounds__(kThreads) forward_kernel(void* out, Elem out_type, float* lse, const bf16* qkv,
                                                           AttnLayout L, float scale) {
  using S = Strides<D>;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* qs = reinterpret_cast<bf16*>(smem);
  bf16* ks = qs + kRows * S::tile;
  bf16* vs = ks + kRows * S::tile;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* sw = reinterpret_cast<float*>(vs + kRows * S::tile) + warp * 16 * S::f32;          // scores
  float* ow = reinterpret_cast<float*>(vs + kRows * S::tile) + (kWarps + warp) * 16 * S::f32;  // output
  bf16* pw = reinterpret_cast<bf16*>(reinterpret_cast<float*>(vs + kRows * S::tile) + 2 * kWarps * 16 * S::f32) +
             warp * 16 * S::prob;

  const int64_t b = blockIdx.x / L.H, h = blockIdx.x % L.H, g = h / (L.H / L.KVH);
  const int64_t q0 = static_cast<int64_t>(gridDim.y - 1 - blockIdx.y) * kRows;
  stage<D>(qs, qkv, L.q(b, 0, h), L.W, q0, L.T);
  for (int e = lane; e < 16 * S::f32; e += 32) ow[e] = 0.f;
  // Lane pair (2r, 2r+1) owns row r of the warp's 16: columns [half * 32, half * 32 + 32).
  const int r = lane / 2, half = lane % 2;
  const int64_t qi = q0 + warp * 16 + r, warp_last = q0 + warp * 16 + 15;
  float m = -INFINITY, l = 0.f;
  const int64_t key_end = min(L.T, q0 + kRows);
  for (int64_t j0 = 0; j0 < key_end; j0 += kCols) {
    stage_kv<D>(ks, vs, qkv, L, b, g, j0);
    if (j0 > warp_last) continue;  // every key of the tile comes after this warp's queries
    product_nt<D>(sw, qs + warp * 16 * S::tile, ks);
    __syncwarp();
    const float* srow = sw + r * S::f32 + half * 32;
    const int64_t key0 = j0 + half * 32;
    float tile_max = -INFINITY;
#pragma unroll 8
    for (int c = 0; c < 32; ++c)
      if (key0 + c <= qi && key0 + c < L.T) tile_max = fmaxf(tile_max, srow[c] * scale);
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    const float m_new = fmaxf(m, tile_max);
    const float base = m_new == -INFINITY ? 0.f : m_new;  // a row with no key yet keeps zeros
    const float corr = expf(m - base);
    float sum = 0.f;
    bf16* prow = pw + r * S::prob + half * 32;
#pragma unroll 8
    for (int c = 0; c < 32; ++c) {
      const float p = key0 + c <= qi && key0 + c < L.T ? expf(srow[c] * scale - base) : 0.f;
      prow[c] = __float2bfloat16_rn(p);
      sum += p;
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    l = l * corr + sum;
    m = m_new;
    float* orow = ow + r * S::f32 + half * (D / 2);
#pragma unroll 8
    for (int c = 0; c < D / 2; ++c) orow[c] *= corr;
    __syncwarp();
    FragC acc[D / 16];
#pragma unroll
    for (int n = 0; n < D / 16; ++n) wmma::load_matrix_sync(acc[n], ow + n * 16, S::f32, wmma::mem_row_major);
    accumulate_pn<D>(acc, pw, vs);
#pragma unroll
    for (int n = 0; n < D / 16; ++n) wmma::store_matrix_sync(ow + n * 16, acc[n], S::f32, wmma::mem_row_major);
    __syncwarp();
  }
  if (qi >= L.T) return;
  const float inv = 1.f / l;
  const float* orow = ow + r * S::f32 + half * (D / 2);
  const int64_t at = L.o(b, qi, h) + half * (D / 2);
  for (int c = 0; c < D / 2; ++c) store(out, at + c, out_type, orow[c] * inv);
  if (half == 0) lse[(b * L.H + h) * L.T + qi] = m + logf(l);
}

// delta (B,H,T) = rowsum(dout * out): one warp per (b, t, h) row.
__global__ void delta_kernel(float* delta, const float* dout, const void* out, Elem out_type, AttnLayout L) {
  const int64_t rows = L.B * L.T * L.H, lane = threadIdx.x % 32;
  for (int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; row < rows;
       row += static_cast<int64_t>(gridDim.x) * blockDim.x / 32) {
    const int64_t h = row % L.H, t = (row / L.H) % L.T, b = row / (L.H * L.T), at = L.o(b, t, h);
    float s = 0.f;
    for (int64_t d = lane; d < L.D; d += 32) s += dout[at + d] * load(out, at + d, out_type);
    s = warp_sum(s);
    if (lane == 0) delta[(b * L.H + h) * L.T + t] = s;
  }
}

// Adds the warp's 16 rows of acc (staged through its f32 scratch) to dst rows
// row0 + i (those < T), row i at dst[offset(row0 + i)].
template <int D, typename Offset>
__device__ __forceinline__ void add_rows(float* dst, FragC (&acc)[D / 16], float* scratch, int64_t row0, int64_t T,
                                         Offset offset) {
#pragma unroll
  for (int n = 0; n < D / 16; ++n) wmma::store_matrix_sync(scratch + n * 16, acc[n], Strides<D>::f32, wmma::mem_row_major);
  __syncwarp();
  const int lane = threadIdx.x % 32;
  for (int i = 0; i < 16; ++i) {
    if (row0 + i >= T) break;
    float* row = dst + offset(row0 + i);
    for (int d = lane; d < D; d += 32) row[d] += scratch[i * Strides<D>::f32 + d];
  }
  __syncwarp();
}

// dQ pass, grid as forward: dS = P * (dP - delta), dq += dS k * scale.
template <int D>
__global__ void __launch_bounds__(kThreads) backward_dq_kernel(float* dqkv, const float* delta, const float* dout,
                                                               const bf16* qkv, const float* lse, AttnLayout L,
                                                               float scale) {
  using S = Strides<D>;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* qs = reinterpret_cast<bf16*>(smem);
  bf16* dos = qs + kRows * S::tile;
  bf16* ks = dos + kRows * S::tile;
  bf16* vs = ks + kRows * S::tile;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* f32_base = reinterpret_cast<float*>(vs + kRows * S::tile);
  float* sw = f32_base + warp * 16 * S::f32;             // scores
  float* dpw = f32_base + (kWarps + warp) * 16 * S::f32;  // dO V^T
  bf16* dsw = reinterpret_cast<bf16*>(f32_base + 2 * kWarps * 16 * S::f32) + warp * 16 * S::prob;

  const int64_t b = blockIdx.x / L.H, h = blockIdx.x % L.H, g = h / (L.H / L.KVH);
  const int64_t q0 = static_cast<int64_t>(gridDim.y - 1 - blockIdx.y) * kRows;
  stage<D>(qs, qkv, L.q(b, 0, h), L.W, q0, L.T);
  stage_rounded<D>(dos, dout, L.o(b, 0, h), L.H * L.D, q0, L.T);
  const int r = lane / 2, half = lane % 2;
  const int64_t qi = q0 + warp * 16 + r, warp_last = q0 + warp * 16 + 15;
  const int64_t stats = (b * L.H + h) * L.T + qi;
  const float row_lse = qi < L.T ? lse[stats] : 0.f, row_delta = qi < L.T ? delta[stats] : 0.f;
  FragC dq[D / 16];
#pragma unroll
  for (int n = 0; n < D / 16; ++n) wmma::fill_fragment(dq[n], 0.f);
  const int64_t key_end = min(L.T, q0 + kRows);
  for (int64_t j0 = 0; j0 < key_end; j0 += kCols) {
    stage_kv<D>(ks, vs, qkv, L, b, g, j0);
    if (j0 > warp_last) continue;
    product_nt<D>(sw, qs + warp * 16 * S::tile, ks);
    product_nt<D>(dpw, dos + warp * 16 * S::tile, vs);
    __syncwarp();
    const int64_t key0 = j0 + half * 32;
    const float* srow = sw + r * S::f32 + half * 32;
    const float* dprow = dpw + r * S::f32 + half * 32;
    bf16* dsrow = dsw + r * S::prob + half * 32;
#pragma unroll 8
    for (int c = 0; c < 32; ++c) {
      const bool valid = key0 + c <= qi && key0 + c < L.T && qi < L.T;
      const float p = valid ? expf(srow[c] * scale - row_lse) : 0.f;
      dsrow[c] = __float2bfloat16_rn(p * (dprow[c] - row_delta) * scale);
    }
    __syncwarp();
    accumulate_pn<D>(dq, dsw, ks);
    __syncwarp();
  }
  add_rows<D>(dqkv, dq, sw, q0 + warp * 16, L.T, [&](int64_t t) { return L.q(b, t, h); });
}

// dK/dV pass: grid (B*KVH, ceil(T / kRows)); a block owns 64 keys of kv head g and walks the
// group's query heads and the query tiles at or after its keys: dv += P^T dO, dk += dS^T q * scale.
template <int D>
__global__ void __launch_bounds__(kThreads) backward_dkv_kernel(float* dqkv, const float* delta, const float* dout,
                                                                const bf16* qkv, const float* lse, AttnLayout L,
                                                                float scale) {
  using S = Strides<D>;
  extern __shared__ __align__(128) unsigned char smem[];
  __shared__ float lse_s[kCols], delta_s[kCols];
  bf16* ks = reinterpret_cast<bf16*>(smem);
  bf16* vs = ks + kRows * S::tile;
  bf16* qs = vs + kRows * S::tile;
  bf16* dos = qs + kRows * S::tile;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* f32_base = reinterpret_cast<float*>(dos + kRows * S::tile);
  float* sw = f32_base + warp * 16 * S::f32;              // K Q^T
  float* dpw = f32_base + (kWarps + warp) * 16 * S::f32;   // V dO^T
  bf16* pw = reinterpret_cast<bf16*>(f32_base + 2 * kWarps * 16 * S::f32) + warp * 16 * S::prob;
  bf16* dsw = pw + kWarps * 16 * S::prob;

  const int64_t b = blockIdx.x / L.KVH, g = blockIdx.x % L.KVH, group = L.H / L.KVH;
  const int64_t k0 = static_cast<int64_t>(blockIdx.y) * kRows;
  stage_kv<D>(ks, vs, qkv, L, b, g, k0);
  const int r = lane / 2, half = lane % 2;
  const int64_t kj = k0 + warp * 16 + r;
  FragC dk[D / 16], dv[D / 16];
#pragma unroll
  for (int n = 0; n < D / 16; ++n) {
    wmma::fill_fragment(dk[n], 0.f);
    wmma::fill_fragment(dv[n], 0.f);
  }
  for (int64_t h = g * group; h < (g + 1) * group; ++h) {
    const int64_t stats = (b * L.H + h) * L.T;
    for (int64_t i0 = k0; i0 < L.T; i0 += kCols) {  // earlier queries see none of these keys
      __syncthreads();
      stage<D>(qs, qkv, L.q(b, 0, h), L.W, i0, L.T);
      stage_rounded<D>(dos, dout, L.o(b, 0, h), L.H * L.D, i0, L.T);
      for (int e = threadIdx.x; e < kCols; e += kThreads) {
        const bool in = i0 + e < L.T;
        lse_s[e] = in ? lse[stats + i0 + e] : 0.f;
        delta_s[e] = in ? delta[stats + i0 + e] : 0.f;
      }
      __syncthreads();
      product_nt<D>(sw, ks + warp * 16 * S::tile, qs);
      product_nt<D>(dpw, vs + warp * 16 * S::tile, dos);
      __syncwarp();
      const int col0 = half * 32;
      const float* srow = sw + r * S::f32 + col0;
      const float* dprow = dpw + r * S::f32 + col0;
      bf16* prow = pw + r * S::prob + col0;
      bf16* dsrow = dsw + r * S::prob + col0;
#pragma unroll 8
      for (int c = 0; c < 32; ++c) {
        const int64_t qi = i0 + col0 + c;
        const bool valid = qi >= kj && qi < L.T && kj < L.T;
        const float p = valid ? expf(srow[c] * scale - lse_s[col0 + c]) : 0.f;
        prow[c] = __float2bfloat16_rn(p);
        dsrow[c] = __float2bfloat16_rn(p * (dprow[c] - delta_s[col0 + c]) * scale);
      }
      __syncwarp();
      accumulate_pn<D>(dv, pw, dos);
      accumulate_pn<D>(dk, dsw, qs);
      __syncwarp();
    }
  }
  const int64_t row0 = k0 + warp * 16;
  add_rows<D>(dqkv, dk, sw, row0, L.T, [&](int64_t t) { return L.k(b, t, g); });
  add_rows<D>(dqkv, dv, sw, row0, L.T, [&](int64_t t) { return L.v(b, t, g); });
}

template <int D>
constexpr size_t forward_smem() {
  using S = Strides<D>;
  return 3 * S::tile_bytes + 2 * S::f32_bytes + S::prob_bytes;
}
template <int D>
constexpr size_t dq_smem() {
  using S = Strides<D>;
  return 4 * S::tile_bytes + 2 * S::f32_bytes + S::prob_bytes;
}
template <int D>
constexpr size_t dkv_smem() {
  using S = Strides<D>;
  return 4 * S::tile_bytes + 2 * S::f32_bytes + 2 * S::prob_bytes;
}

// More than 48 KiB of dynamic shared memory needs the kernel's opt-in, once per device and kernel.
template <typename Kernel>
void allow_smem(Kernel kernel, size_t bytes) {
  ZT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <int D>
void forward(void* out, Elem out_type, float* lse, const void* qkv, const AttnDims& d) {
  static const bool ready = (allow_smem(forward_kernel<D>, forward_smem<D>()), true);
  (void)ready;
  const dim3 grid(static_cast<unsigned>(d.B * d.H), static_cast<unsigned>((d.T + kRows - 1) / kRows));
  forward_kernel<D><<<grid, kThreads, forward_smem<D>(), compute_stream()>>>(
      out, out_type, lse, static_cast<const bf16*>(qkv), attn_layout(d), attn_scale(d));
  ZT_CUDA_CHECK_LAUNCH(attention_forward_mma);
}

template <int D>
void backward(float* dqkv, const float* dout, const void* qkv, const void* out, Elem out_type, const float* lse,
              const AttnDims& d, float* delta) {
  static const bool ready =
      (allow_smem(backward_dq_kernel<D>, dq_smem<D>()), allow_smem(backward_dkv_kernel<D>, dkv_smem<D>()), true);
  (void)ready;
  cudaStream_t stream = compute_stream();
  const AttnLayout L = attn_layout(d);
  const int64_t rows = d.B * d.T * d.H;
  delta_kernel<<<grid_for(rows * 32, 256), 256, 0, stream>>>(delta, dout, out, out_type, L);
  ZT_CUDA_CHECK_LAUNCH(attention_delta);
  const unsigned tiles = static_cast<unsigned>((d.T + kRows - 1) / kRows);
  const bf16* q = static_cast<const bf16*>(qkv);
  backward_dq_kernel<D><<<dim3(static_cast<unsigned>(d.B * d.H), tiles), kThreads, dq_smem<D>(), stream>>>(
      dqkv, delta, dout, q, lse, L, attn_scale(d));
  ZT_CUDA_CHECK_LAUNCH(attention_backward_dq_mma);
  backward_dkv_kernel<D><<<dim3(static_cast<unsigned>(d.B * d.KVH), tiles), kThreads, dkv_smem<D>(), stream>>>(
      dqkv, delta, dout, q, lse, L, attn_scale(d));
  ZT_CUDA_CHECK_LAUNCH(attention_backward_dkv_mma);
}
}  // namespace

bool attention_uses_tensor_cores(Elem qkv_type, const AttnDims& d) {
  return qkv_type == Elem::bf16 && (d.D == 64 || d.D == 128) && tensor_core_attention_chosen();
}

bool attention_forward_mma(void* out, Elem out_type, float* lse, const void* qkv, Elem qkv_type, const AttnDims& d) {
  if (!attention_uses_tensor_cores(qkv_type, d) || !aligned16(qkv)) return false;
  if (d.D == 64)
    forward<64>(out, out_type, lse, qkv, d);
  else
    forward<128>(out, out_type, lse, qkv, d);
  return true;
}

bool attention_backward_mma(float* dqkv, const float* dout, const void* qkv, Elem qkv_type, const void* out,
                            Elem out_type, const float* lse, const AttnDims& d, float* scratch) {
  if (!attention_uses_tensor_cores(qkv_type, d) || !aligned16(qkv) || !aligned16(dout)) return false;
  if (d.D == 64)
    backward<64>(dqkv, dout, qkv, out, out_type, lse, d, scratch);
  else
    backward<128>(dqkv, dout, qkv, out, out_type, lse, d, scratch);
  return true;
}

}  // namespace zt::cuda
