// Causal attention without the (T,T) matrix (FlashAttention-2's recurrence): each warp owns
// one query row (forward, dQ) or one key row (dK, dV) and walks the other side in tiles staged
// in shared memory by the block, with an online softmax. Forward saves the log-sum-exp; the
// backward recomputes probabilities from it. No atomics: dQ and dK/dV are separate passes,
// so every gradient is a fixed-order sum (deterministic).
//
// Each lane holds D/32 elements of its row in registers: any head dim up to kMaxAttnHeadDim.
// This plain version serves f32, f16 and odd head dims; bf16 at head dims 64 and 128 runs on
// tensor cores (attention_mma.cu).
#include <cmath>

#include "core/cuda/attention_mma.h"
#include "core/cuda/attention_layout.cuh"
#include "core/cuda/common.cuh"
#include "core/math/online_softmax.h"

namespace zt::cuda {

namespace {
constexpr int kWarps = 8;                              // rows per block
constexpr int kTile = 16;                              // rows of the other side staged at once
constexpr int kPerLane = kMaxAttnHeadDim / 32;         // register elements per lane


// Loads row elements lane + 32*x into r (zero past D).
__device__ __forceinline__ void load_row(float (&r)[kPerLane], const void* p, int64_t at, Elem t, int64_t D,
                                         int lane) {
#pragma unroll
  for (int x = 0; x < kPerLane; ++x) {
    const int64_t d = lane + 32 * x;
    r[x] = d < D ? load(p, at + d, t) : 0.f;
  }
}

// Dot product of a register row with a shared-memory row, summed over the warp.
__device__ __forceinline__ float dot_shared(const float (&r)[kPerLane], const float* s, int64_t D, int lane) {
  float acc = 0.f;
#pragma unroll
  for (int x = 0; x < kPerLane; ++x) {
    const int64_t d = lane + 32 * x;
    if (d < D) acc += r[x] * s[d];
  }
  return warp_sum(acc);
}

// Stages rows [r0, r0 + kTile) (those < T) of one head: dst_a[i*D + d] from src_a, dst_b from src_b.
__device__ __forceinline__ void stage_tile(float* dst_a, float* dst_b, const void* src_a, Elem ta,
                                           const void* src_b, Elem tb, int64_t a_base, int64_t a_stride,
                                           int64_t b_base, int64_t b_stride, int64_t r0, int64_t T, int64_t D) {
  for (int64_t e = threadIdx.x; e < kTile * D; e += blockDim.x) {
    const int64_t i = e / D, d = e % D, r = r0 + i;
    const bool in = r < T;
    dst_a[e] = in ? load(src_a, a_base + r * a_stride + d, ta) : 0.f;
    dst_b[e] = in ? load(src_b, b_base + r * b_stride + d, tb) : 0.f;
  }
}

// grid (B*H, ceil(T / kWarps)) (y is the one limited to 65535); out (B,T,H*D), lse (B,H,T).
__global__ void attention_forward_kernel(void* out, Elem out_type, float* lse, const void* qkv, Elem qkv_type,
                                         AttnLayout L, float scale) {
  extern __shared__ float smem[];
  float* ks = smem;
  float* vs = smem + kTile * L.D;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t b = blockIdx.x / L.H, h = blockIdx.x % L.H, g = h / (L.H / L.KVH);
  const int64_t q0 = static_cast<int64_t>(blockIdx.y) * kWarps, i = q0 + warp;
  float q[kPerLane], acc[kPerLane] = {};
  if (i < L.T) load_row(q, qkv, L.q(b, i, h), qkv_type, L.D, lane);
  math::OnlineSoftmax softmax;
  const int64_t last = min(L.T - 1, q0 + kWarps - 1);
  for (int64_t j0 = 0; j0 <= last; j0 += kTile) {
    __syncthreads();
    stage_tile(ks, vs, qkv, qkv_type, qkv, qkv_type, L.k(b, 0, g), L.W, L.v(b, 0, g), L.W, j0, L.T, L.D);
    __syncthreads();
    if (i >= L.T) continue;
    for (int jj = 0; jj < kTile && j0 + jj <= i; ++jj) {
      float corr, p;
      softmax.add(dot_shared(q, ks + jj * L.D, L.D, lane) * scale, corr, p);
#pragma unroll
      for (int x = 0; x < kPerLane; ++x) {
        const int64_t d = lane + 32 * x;
        if (d < L.D) acc[x] = acc[x] * corr + p * vs[jj * L.D + d];
      }
    }
  }
  if (i >= L.T) return;
  const float inv = 1.f / softmax.l;
#pragma unroll
  for (int x = 0; x < kPerLane; ++x) {
    const int64_t d = lane + 32 * x;
    if (d < L.D) store(out, L.o(b, i, h) + d, out_type, acc[x] * inv);
  }
  if (lane == 0) lse[(b * L.H + h) * L.T + i] = softmax.lse();
}

// dQ pass, grid as forward. delta (B,H,T) = rowsum(dout * out), written here for the dK/dV pass.
// dS = P * (dP - delta), dq += dS k * scale.
__global__ void attention_backward_dq_kernel(float* dqkv, float* delta, const float* dout, const void* qkv,
                                             Elem qkv_type, const void* out, Elem out_type, const float* lse,
                                             AttnLayout L, float scale) {
  extern __shared__ float smem[];
  float* ks = smem;
  float* vs = smem + kTile * L.D;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t b = blockIdx.x / L.H, h = blockIdx.x % L.H, g = h / (L.H / L.KVH);
  const int64_t q0 = static_cast<int64_t>(blockIdx.y) * kWarps, i = q0 + warp;
  float q[kPerLane], dO[kPerLane], o[kPerLane], dq[kPerLane] = {};
  float row_lse = 0.f, row_delta = 0.f;
  if (i < L.T) {
    load_row(q, qkv, L.q(b, i, h), qkv_type, L.D, lane);
    load_row(dO, dout, L.o(b, i, h), Elem::f32, L.D, lane);
    load_row(o, out, L.o(b, i, h), out_type, L.D, lane);
    float s = 0.f;
#pragma unroll
    for (int x = 0; x < kPerLane; ++x) s += dO[x] * o[x];
    row_delta = warp_sum(s);
    row_lse = lse[(b * L.H + h) * L.T + i];
    if (lane == 0) delta[(b * L.H + h) * L.T + i] = row_delta;
  }
  const int64_t last = min(L.T - 1, q0 + kWarps - 1);
  for (int64_t j0 = 0; j0 <= last; j0 += kTile) {
    __syncthreads();
    stage_tile(ks, vs, qkv, qkv_type, qkv, qkv_type, L.k(b, 0, g), L.W, L.v(b, 0, g), L.W, j0, L.T, L.D);
    __syncthreads();
    if (i >= L.T) continue;
    for (int jj = 0; jj < kTile && j0 + jj <= i; ++jj) {
      const float p = expf(dot_shared(q, ks + jj * L.D, L.D, lane) * scale - row_lse);
      const float ds = p * (dot_shared(dO, vs + jj * L.D, L.D, lane) - row_delta) * scale;
#pragma unroll
      for (int x = 0; x < kPerLane; ++x) {
        const int64_t d = lane + 32 * x;
        if (d < L.D) dq[x] += ds * ks[jj * L.D + d];
      }
    }
  }
  if (i >= L.T) return;
#pragma unroll
  for (int x = 0; x < kPerLane; ++x) {
    const int64_t d = lane + 32 * x;
    if (d < L.D) dqkv[L.q(b, i, h) + d] += dq[x];
  }
}

// dK/dV pass: grid (B*KVH, ceil(T / kWarps)); warp = key row j of kv head g, summing over the
// group's query heads and the queries i >= j: dv += P dO_i, dk += dS q_i * scale.
__global__ void attention_backward_dkv_kernel(float* dqkv, const float* delta, const float* dout, const void* qkv,
                                              Elem qkv_type, const float* lse, AttnLayout L, float scale) {
  extern __shared__ float smem[];
  float* qs = smem;
  float* dos = smem + kTile * L.D;
  __shared__ float lse_s[kTile], delta_s[kTile];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t b = blockIdx.x / L.KVH, g = blockIdx.x % L.KVH, group = L.H / L.KVH;
  const int64_t j0 = static_cast<int64_t>(blockIdx.y) * kWarps, j = j0 + warp;
  float k[kPerLane], v[kPerLane], dk[kPerLane] = {}, dv[kPerLane] = {};
  if (j < L.T) {
    load_row(k, qkv, L.k(b, j, g), qkv_type, L.D, lane);
    load_row(v, qkv, L.v(b, j, g), qkv_type, L.D, lane);
  }
  const int64_t first = j0 / kTile * kTile;  // the tile holding query j0: earlier queries see no key here
  for (int64_t h = g * group; h < (g + 1) * group; ++h) {
    const int64_t stats = (b * L.H + h) * L.T;
    for (int64_t i0 = first; i0 < L.T; i0 += kTile) {
      __syncthreads();
      stage_tile(qs, dos, qkv, qkv_type, dout, Elem::f32, L.q(b, 0, h), L.W, L.o(b, 0, h), L.H * L.D, i0, L.T,
                 L.D);
      for (int e = threadIdx.x; e < kTile; e += blockDim.x) {
        const bool in = i0 + e < L.T;
        lse_s[e] = in ? lse[stats + i0 + e] : 0.f;
        delta_s[e] = in ? delta[stats + i0 + e] : 0.f;
      }
      __syncthreads();
      if (j >= L.T) continue;
      for (int ii = 0; ii < kTile && i0 + ii < L.T; ++ii) {
        if (i0 + ii < j) continue;
        const float* qi = qs + ii * L.D;
        const float* doi = dos + ii * L.D;
        const float p = expf(dot_shared(k, qi, L.D, lane) * scale - lse_s[ii]);
        const float ds = p * (dot_shared(v, doi, L.D, lane) - delta_s[ii]) * scale;
#pragma unroll
        for (int x = 0; x < kPerLane; ++x) {
          const int64_t d = lane + 32 * x;
          if (d < L.D) {
            dv[x] += p * doi[d];
            dk[x] += ds * qi[d];
          }
        }
      }
    }
  }
  if (j >= L.T) return;
#pragma unroll
  for (int x = 0; x < kPerLane; ++x) {
    const int64_t d = lane + 32 * x;
    if (d < L.D) {
      dqkv[L.k(b, j, g) + d] += dk[x];
      dqkv[L.v(b, j, g) + d] += dv[x];
    }
  }
}

// Decoding: copies the new position's k and v (qkv is one row) into cache row pos.
__global__ void kv_cache_store_kernel(float* kcache, float* vcache, const void* qkv, Elem qkv_type, int64_t pos,
                                      int64_t q_width, int64_t kv_width) {
  for (int64_t e = threadIdx.x; e < kv_width; e += blockDim.x) {
    kcache[pos * kv_width + e] = load(qkv, q_width + e, qkv_type);
    vcache[pos * kv_width + e] = load(qkv, q_width + kv_width + e, qkv_type);
  }
}

// Decoding: warp = query head h over cache rows [0, L), online softmax as in forward.
__global__ void attention_decode_kernel(void* out, Elem out_type, const void* qkv, Elem qkv_type,
                                        const float* kcache, const float* vcache, int64_t L, int64_t H,
                                        int64_t KVH, int64_t D, float scale) {
  const int lane = threadIdx.x % 32;
  const int64_t h = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (h >= H) return;
  const int64_t kv_width = KVH * D, kv_off = (h / (H / KVH)) * D;
  float q[kPerLane], acc[kPerLane] = {};
  load_row(q, qkv, h * D, qkv_type, D, lane);
  math::OnlineSoftmax softmax;
  for (int64_t j = 0; j < L; ++j) {
    float corr, p;
    softmax.add(dot_shared(q, kcache + j * kv_width + kv_off, D, lane) * scale, corr, p);
#pragma unroll
    for (int x = 0; x < kPerLane; ++x) {
      const int64_t d = lane + 32 * x;
      if (d < D) acc[x] = acc[x] * corr + p * vcache[j * kv_width + kv_off + d];
    }
  }
#pragma unroll
  for (int x = 0; x < kPerLane; ++x) {
    const int64_t d = lane + 32 * x;
    if (d < D) store(out, h * D + d, out_type, acc[x] / softmax.l);
  }
}

size_t tile_bytes(const AttnDims& d) { return 2 * kTile * static_cast<size_t>(d.D) * sizeof(float); }
}  // namespace

void attention_forward(void* out, Elem out_type, float* lse, const void* qkv, Elem qkv_type, const AttnDims& d) {
  if (attention_forward_mma(out, out_type, lse, qkv, qkv_type, d)) return;
  const dim3 grid(static_cast<unsigned>(d.B * d.H), static_cast<unsigned>((d.T + kWarps - 1) / kWarps));
  attention_forward_kernel<<<grid, kWarps * 32, tile_bytes(d), compute_stream()>>>(out, out_type, lse, qkv, qkv_type,
                                                                                   attn_layout(d), attn_scale(d));
  ZT_CUDA_CHECK_LAUNCH(attention_forward_kernel);
}

void attention_backward(float* dqkv, const float* dout, const void* qkv, Elem qkv_type, const void* out,
                        Elem out_type, const float* lse, const AttnDims& d, float* scratch) {
  if (attention_backward_mma(dqkv, dout, qkv, qkv_type, out, out_type, lse, d, scratch)) return;
  cudaStream_t stream = compute_stream();
  float* delta = scratch;  // (B,H,T) rowsum(dout * out), from the dQ pass to the dK/dV pass
  const unsigned row_blocks = static_cast<unsigned>((d.T + kWarps - 1) / kWarps);
  attention_backward_dq_kernel<<<dim3(static_cast<unsigned>(d.B * d.H), row_blocks), kWarps * 32, tile_bytes(d),
                                 stream>>>(dqkv, delta, dout, qkv, qkv_type, out, out_type, lse, attn_layout(d),
                                           attn_scale(d));
  ZT_CUDA_CHECK_LAUNCH(attention_backward_dq_kernel);
  attention_backward_dkv_kernel<<<dim3(static_cast<unsigned>(d.B * d.KVH), row_blocks), kWarps * 32, tile_bytes(d),
                                  stream>>>(dqkv, delta, dout, qkv, qkv_type, lse, attn_layout(d), attn_scale(d));
  ZT_CUDA_CHECK_LAUNCH(attention_backward_dkv_kernel);
}

void attention_decode(void* out, Elem out_type, const void* qkv, Elem qkv_type, float* kcache, float* vcache,
                      int64_t pos, const AttnDims& d) {
  cudaStream_t stream = compute_stream();
  kv_cache_store_kernel<<<1, 256, 0, stream>>>(kcache, vcache, qkv, qkv_type, pos, d.H * d.D, d.KVH * d.D);
  ZT_CUDA_CHECK_LAUNCH(kv_cache_store_kernel);
  attention_decode_kernel<<<static_cast<unsigned>((d.H + kWarps - 1) / kWarps), kWarps * 32, 0, stream>>>(
      out, out_type, qkv, qkv_type, kcache, vcache, pos + 1, d.H, d.KVH, d.D, attn_scale(d));
  ZT_CUDA_CHECK_LAUNCH(attention_decode_kernel);
}

}  // namespace zt::cuda
