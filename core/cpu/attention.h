// Causal multi-head / grouped-query attention on raw f32 pointers (see core/kernels.h for the
// layout). qkv rows are W = (H + 2*KVH) * D wide; out rows are H * D wide; lse is (B,H,T).
// FlashAttention-2 on the CPU: scores are computed tile by tile and never stored whole, so
// the only thing saved for backward besides out is one log-sum-exp per query row.
#pragma once
#include <cstdint>

namespace zt::cpu {

struct Bf16;

struct AttnDims {
  int64_t B, T, H, KVH, D;
  int64_t qkv_width() const { return (H + 2 * KVH) * D; }
};

// out = softmax(mask(q k^T / sqrt(D))) v per head; lse[b,h,t] = log sum_{j<=t} exp(q_t.k_j/sqrt(D)).
// The bf16 overloads read qkv (and backward's out) and write forward's out in bf16 directly,
// widening each tile as it is used: the same values as widened copies, without them.
void attention_forward(float* out, float* lse, const float* qkv, const AttnDims& d);
void attention_forward(Bf16* out, float* lse, const Bf16* qkv, const AttnDims& d);
// dqkv += d(loss)/d(qkv) given dout = d(loss)/d(out) and the out and lse saved by forward
// (the softmax is recomputed from lse; out gives rowsum(dout * out) = rowsum(dP * P)); with
// accumulate = false dqkv is written, not added to.
void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out,
                        const float* lse, const AttnDims& d, bool accumulate = true);
void attention_backward(float* dqkv, const float* dout, const Bf16* qkv, const Bf16* out, const float* lse,
                        const AttnDims& d, bool accumulate = true);

// One decoding step with a KV cache: the row qkv (W wide) holds the newest position's q, k
// and v; its k and v are stored at row `pos` of kcache/vcache (rows KVH * D wide), then each
// query head attends over cache rows [0, pos]. out is H * D wide.
void attention_decode(float* out, const float* qkv, float* kcache, float* vcache, int64_t pos,
                      const AttnDims& d);

}  // namespace zt::cpu
