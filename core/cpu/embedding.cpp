#include <omp.h>

#include <algorithm>

#include "core/cpu/ops.h"

namespace zt::cpu {

void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe,
                       int64_t N, int64_t T, int64_t C) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* e = wte + static_cast<int64_t>(tokens[n]) * C;
    float* y = out + n * C;
    if (wpe) {
      const float* p = wpe + (n % T) * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) y[c] = e[c] + p[c];
    } else {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) y[c] = e[c];
    }
  }
}

// Threads split the channels, not the rows: repeated tokens then never race, and each
// channel is summed in row order (deterministic at any thread count).
void embedding_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens,
                        int64_t N, int64_t T, int64_t C) {
#pragma omp parallel
  {
    const int nt = omp_get_num_threads(), id = omp_get_thread_num();
    const int64_t c0 = C * id / nt, c1 = C * (id + 1) / nt;
    for (int64_t n = 0; n < N; ++n) {
      const float* g = dout + n * C;
      float* e = dwte + static_cast<int64_t>(tokens[n]) * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) e[c] += g[c];
      if (dwpe) {
        float* p = dwpe + (n % T) * C;
#pragma omp simd
        for (int64_t c = c0; c < c1; ++c) p[c] += g[c];
      }
    }
  }
}

}  // namespace zt::cpu
