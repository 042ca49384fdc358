// Causal multi-head / grouped-query attention and rotary embeddings on packed qkv rows.
// qkv (B,T,W) with W = (H + 2 KVH) D: H query heads, then KVH key heads, then KVH value heads.
#pragma once
#include <cstdint>

namespace zt::cpu {

void attention_forward(float* out, float* probs, const float* qkv, int64_t B, int64_t T,
                       int64_t H, int64_t KVH, int64_t D);
void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* probs,
                        int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D);

void rope_table(float* table, int64_t T, int64_t D, float theta);
// inverse = true applies the transposed rotation (the backward pass).
void rope_apply(float* qkv, const float* table, int64_t B, int64_t T, int64_t H, int64_t KVH,
                int64_t D, bool inverse);

}  // namespace zt::cpu
