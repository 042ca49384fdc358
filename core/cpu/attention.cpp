#include "core/cpu/attention.h"

#include <cmath>
#include <vector>

#include "core/cpu/gemm.h"
#include "core/cpu/vec_math.h"

namespace zt::cpu {

// One task per (b, h): S = scale Q K^T, causal row softmax, Y = P V. The gemms read heads in
// place through row strides; inside the OpenMP region oneDNN runs single-threaded.
void attention_forward(float* out, float* probs, const float* qkv, int64_t B, int64_t T,
                       int64_t H, int64_t KVH, int64_t D) {
  const int64_t W = (H + 2 * KVH) * D, C = H * D, group = H / KVH;
  const float scale = 1.f / std::sqrt(static_cast<float>(D));
#pragma omp parallel for schedule(static)
  for (int64_t task = 0; task < B * H; ++task) {
    const int64_t b = task / H, h = task % H, kv = h / group;
    const float* q = qkv + b * T * W + h * D;
    const float* k = qkv + b * T * W + (H + kv) * D;
    const float* v = qkv + b * T * W + (H + KVH + kv) * D;
    float* p = probs + task * T * T;
    sgemm(false, true, T, T, D, scale, q, W, k, W, 0.f, p, T);
    for (int64_t t = 0; t < T; ++t) {
      float* row = p + t * T;
      float mx = -INFINITY;
      for (int64_t j = 0; j <= t; ++j) mx = std::max(mx, row[j]);
      float sum = 0.f;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j <= t; ++j) {
        row[j] = fast_exp(row[j] - mx);
        sum += row[j];
      }
      const float inv = 1.f / sum;
#pragma omp simd
      for (int64_t j = 0; j <= t; ++j) row[j] *= inv;
      for (int64_t j = t + 1; j < T; ++j) row[j] = 0.f;
    }
    sgemm(false, false, T, D, T, 1.f, p, T, v, W, 0.f, out + b * T * C + h * D, C);
  }
}

// One task per (b, kv head) so query heads sharing a kv head never write dK/dV concurrently.
// dP = dY V^T; dS = P (dP - rowsum(dP P)) scale; dQ += dS K; dK += dS^T Q; dV += P^T dY.
void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* probs,
                        int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D) {
  const int64_t W = (H + 2 * KVH) * D, C = H * D, group = H / KVH;
  const float scale = 1.f / std::sqrt(static_cast<float>(D));
#pragma omp parallel
  {
    std::vector<float> ds(static_cast<size_t>(T * T));
#pragma omp for schedule(static)
    for (int64_t task = 0; task < B * KVH; ++task) {
      const int64_t b = task / KVH, kv = task % KVH;
      const float* k = qkv + b * T * W + (H + kv) * D;
      const float* v = qkv + b * T * W + (H + KVH + kv) * D;
      float* dk = dqkv + b * T * W + (H + kv) * D;
      float* dv = dqkv + b * T * W + (H + KVH + kv) * D;
      for (int64_t h = kv * group; h < (kv + 1) * group; ++h) {
        const float* q = qkv + b * T * W + h * D;
        float* dq = dqkv + b * T * W + h * D;
        const float* dy = dout + b * T * C + h * D;
        const float* p = probs + (b * H + h) * T * T;
        sgemm(false, true, T, T, D, 1.f, dy, C, v, W, 0.f, ds.data(), T);  // dP
        for (int64_t t = 0; t < T; ++t) {
          const float* prow = p + t * T;
          float* row = ds.data() + t * T;
          float dot = 0.f;
#pragma omp simd reduction(+ : dot)
          for (int64_t j = 0; j <= t; ++j) dot += row[j] * prow[j];
#pragma omp simd
          for (int64_t j = 0; j <= t; ++j) row[j] = prow[j] * (row[j] - dot) * scale;
          for (int64_t j = t + 1; j < T; ++j) row[j] = 0.f;
        }
        sgemm(false, false, T, D, T, 1.f, ds.data(), T, k, W, 1.f, dq, W);
        sgemm(true, false, T, D, T, 1.f, ds.data(), T, q, W, 1.f, dk, W);
        sgemm(true, false, T, D, T, 1.f, p, T, dy, C, 1.f, dv, W);
      }
    }
  }
}

void rope_table(float* table, int64_t T, int64_t D, float theta) {
  const int64_t half = D / 2;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double inv_freq = std::pow(static_cast<double>(theta), -2.0 * static_cast<double>(i) / static_cast<double>(D));
      const double angle = static_cast<double>(t) * inv_freq;
      table[t * D + i] = static_cast<float>(std::cos(angle));
      table[t * D + half + i] = static_cast<float>(std::sin(angle));
    }
}

// Hugging Face rotate_half: (x1, x2) = (x[i], x[i + D/2]) -> (x1 cos - x2 sin, x2 cos + x1 sin).
void rope_apply(float* qkv, const float* table, int64_t B, int64_t T, int64_t H, int64_t KVH,
                int64_t D, bool inverse) {
  const int64_t W = (H + 2 * KVH) * D, half = D / 2, heads = H + KVH;  // q and k, not v
  const float sign = inverse ? -1.f : 1.f;
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < B * T; ++row) {
    const int64_t t = row % T;
    const float* cs = table + t * D;
    const float* sn = cs + half;
    for (int64_t h = 0; h < heads; ++h) {
      float* x = qkv + row * W + h * D;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const float x1 = x[i], x2 = x[i + half], s = sign * sn[i];
        x[i] = x1 * cs[i] - x2 * s;
        x[i + half] = x2 * cs[i] + x1 * s;
      }
    }
  }
}

}  // namespace zt::cpu
