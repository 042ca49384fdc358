#include <algorithm>
#include <cmath>

#include "core/cpu/ops.h"
#include "core/cpu/vec_math.h"

namespace zt::cpu {

namespace {
// The sum of exps is accumulated in f32 (vectorized) over blocks of this many logits, and the
// block sums in f64: a 50257-wide row then loses no more than a short f32 sum would.
constexpr int64_t kSumBlock = 1024;

// max(x[0, n)), NaNs skipped as std::max(m, x) skips them. In lanes: GCC ran `omp simd
// reduction(max)` over a row as a scalar chain of vmaxss, one logit per 4 cycles, which was
// most of the loss's time at gpt2-124m's vocabulary (50257).
float row_max(const float* x, int64_t n) {
  constexpr int64_t kLanes = 16;
  float lane[kLanes];
  for (int64_t l = 0; l < kLanes; ++l) lane[l] = -INFINITY;
  const int64_t whole = n / kLanes * kLanes;
  for (int64_t v = 0; v < whole; v += kLanes)
#pragma omp simd
    for (int64_t l = 0; l < kLanes; ++l) lane[l] = lane[l] < x[v + l] ? x[v + l] : lane[l];
  float mx = -INFINITY;
  for (int64_t l = 0; l < kLanes; ++l) mx = std::max(mx, lane[l]);
  for (int64_t v = whole; v < n; ++v) mx = std::max(mx, x[v]);
  return mx;
}
}  // namespace

// Per row: loss = log(sum exp(x - max)) + max - x[target]. With dlogits, the exps are stored
// as they are summed and then scaled in place to (softmax - onehot) * scale, so each logit
// costs one exp. In place (dlogits == logits) is safe: element v is read before it is
// written, and x[target] is saved before the row is overwritten.
void cross_entropy(float* losses, float* dlogits, const float* logits, const int32_t* targets,
                   int64_t N, int64_t V, float dloss_scale) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* x = logits + n * V;
    const int64_t t = targets[n];
    const float xt = x[t];
    const float mx = row_max(x, V);
    float* d = dlogits ? dlogits + n * V : nullptr;
    double sum = 0.0;
    for (int64_t b = 0; b < V; b += kSumBlock) {
      const int64_t e = std::min(V, b + kSumBlock);
      float s = 0.f;
      if (d) {
#pragma omp simd reduction(+ : s)
        for (int64_t v = b; v < e; ++v) {
          const float ex = fast_exp(x[v] - mx);
          d[v] = ex;
          s += ex;
        }
      } else {
#pragma omp simd reduction(+ : s)
        for (int64_t v = b; v < e; ++v) s += fast_exp(x[v] - mx);
      }
      sum += s;
    }
    losses[n] = static_cast<float>(std::log(sum) + (static_cast<double>(mx) - xt));
    if (d) {
      const float inv = static_cast<float>(dloss_scale / sum);
#pragma omp simd
      for (int64_t v = 0; v < V; ++v) d[v] *= inv;
      d[t] -= dloss_scale;
    }
  }
}

}  // namespace zt::cpu
