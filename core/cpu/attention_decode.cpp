// Attention of one new position over a KV cache (generation). The scores of a head fit in one
// row of pos + 1 floats, so a plain two-pass softmax is exact and simple; the work is
// O(pos * H * D) per token, against the O(pos^2) a full recompute would cost.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/cpu/attention.h"

namespace zt::cpu {

void attention_decode(float* out, const float* qkv, float* kcache, float* vcache, int64_t pos,
                      const AttnDims& d) {
  const int64_t H = d.H, KVH = d.KVH, D = d.D, kv_width = KVH * D, group = H / KVH;
  std::memcpy(kcache + pos * kv_width, qkv + H * D, sizeof(float) * kv_width);
  std::memcpy(vcache + pos * kv_width, qkv + H * D + kv_width, sizeof(float) * kv_width);
  const int64_t L = pos + 1;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  thread_local std::vector<float> scores;
  if (static_cast<int64_t>(scores.size()) < L) scores.resize(L);
  float* s = scores.data();
  for (int64_t h = 0; h < H; ++h) {
    const float* q = qkv + h * D;
    const int64_t kv_off = (h / group) * D;
    float mx = -INFINITY;
    for (int64_t j = 0; j < L; ++j) {
      const float* k = kcache + j * kv_width + kv_off;
      float acc = 0.f;
#pragma omp simd reduction(+ : acc)
      for (int64_t i = 0; i < D; ++i) acc += q[i] * k[i];
      s[j] = acc * scale;
      mx = std::max(mx, s[j]);
    }
    float sum = 0.f;
    for (int64_t j = 0; j < L; ++j) sum += s[j] = std::exp(s[j] - mx);
    const float inv = 1.0f / sum;
    float* o = out + h * D;
    std::fill(o, o + D, 0.f);
    for (int64_t j = 0; j < L; ++j) {
      const float* v = vcache + j * kv_width + kv_off;
      const float p = s[j] * inv;
#pragma omp simd
      for (int64_t i = 0; i < D; ++i) o[i] += p * v[i];
    }
  }
}

}  // namespace zt::cpu
