#include "core/cpu/bf16_elem.h"
#include "core/cpu/ops.h"
#include "core/cpu/reduce.h"

namespace zt::cpu {

void colsum_accumulate(float* out, const float* x, int64_t N, int64_t C, Bf16* rounded) {
  reduce_rows_into(out, C, N, [&](int64_t begin, int64_t end, float* acc) {
    for (int64_t n = begin; n < end; ++n) {
      const float* row = x + n * C;
      if (rounded) {
        Bf16* dst = rounded + n * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          acc[c] += row[c];
          store(dst + c, row[c]);
        }
      } else {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) acc[c] += row[c];
      }
    }
  });
}

}  // namespace zt::cpu
