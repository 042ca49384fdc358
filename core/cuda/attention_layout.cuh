// Where attention's operands lie, shared by the plain (attention.cu) and tensor-core
// (attention_mma.cu) kernels: q, k, v of row t side by side in one qkv row of width W
// ((H + 2 KVH) * D: the H query heads, then the KVH key heads, then the KVH value heads), the
// output (B, T, H*D), the softmax scale 1/sqrt(D).
#pragma once
#include <cmath>
#include <cstdint>

#include "core/cuda/ops.h"

namespace zt::cuda {

struct AttnLayout {
  int64_t B, T, H, KVH, D, W;
  __device__ int64_t q(int64_t b, int64_t t, int64_t h) const { return (b * T + t) * W + h * D; }
  __device__ int64_t k(int64_t b, int64_t t, int64_t g) const { return (b * T + t) * W + (H + g) * D; }
  __device__ int64_t v(int64_t b, int64_t t, int64_t g) const { return (b * T + t) * W + (H + KVH + g) * D; }
  __device__ int64_t o(int64_t b, int64_t t, int64_t h) const { return (b * T + t) * H * D + h * D; }
};

inline AttnLayout attn_layout(const AttnDims& d) { return {d.B, d.T, d.H, d.KVH, d.D, d.qkv_width()}; }
inline float attn_scale(const AttnDims& d) { return 1.0f / std::sqrt(static_cast<float>(d.D)); }

}  // namespace zt::cuda
