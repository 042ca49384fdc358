// Causal multi-head / grouped-query attention on raw f32 pointers (see core/kernels.h for the
// layout). qkv rows are W = (H + 2*KVH) * D wide; out rows are H * D wide; probs is (B,H,T,T).
#pragma once
#include <cstdint>

namespace zt::cpu {

struct AttnDims {
  int64_t B, T, H, KVH, D;
  int64_t qkv_width() const { return (H + 2 * KVH) * D; }
};

// out = softmax(mask(q k^T / sqrt(D))) v per head; probs holds the softmax (0 above the diagonal).
void attention_forward(float* out, float* probs, const float* qkv, const AttnDims& d);
// dqkv += d(loss)/d(qkv) given dout = d(loss)/d(out) and the probs saved by forward.
void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* probs,
                        const AttnDims& d);

}  // namespace zt::cpu
