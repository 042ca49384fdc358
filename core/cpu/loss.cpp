#include <cmath>

#include "core/cpu/ops.h"
#include "core/cpu/vec_math.h"

namespace zt::cpu {

// Per row: loss = logsumexp(x) - x[target], max-subtracted; the backward pass overwrites the
// row with (softmax - onehot) * scale, which is safe in place because the row's loss is read
// before it is overwritten.
void cross_entropy(float* losses, float* dlogits, const float* logits, const int32_t* targets,
                   int64_t N, int64_t V, float dloss_scale) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* x = logits + n * V;
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int64_t v = 0; v < V; ++v) mx = std::max(mx, x[v]);
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int64_t v = 0; v < V; ++v) sum += fast_exp(x[v] - mx);
    const int64_t t = targets[n];
    const float log_sum = std::log(sum);
    losses[n] = log_sum + mx - x[t];
    if (dlogits) {
      float* d = dlogits + n * V;
      const float inv = dloss_scale / sum;
#pragma omp simd
      for (int64_t v = 0; v < V; ++v) d[v] = fast_exp(x[v] - mx) * inv;
      d[t] -= dloss_scale;
    }
  }
}

}  // namespace zt::cpu
