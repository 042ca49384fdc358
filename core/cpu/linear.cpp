#include <cstdint>

#include "core/cpu/bf16_elem.h"
#include "core/cpu/ops.h"
#include "core/cpu/reduce.h"

namespace zt::cpu {
namespace {

// acc += row, and row rounded to bf16 into dst. The restrict qualifiers matter: without them
// GCC reloads row after each store to acc, and this pass ran 1.8x slower (25 -> 14 us for a
// (1024, 128) dout on one Zen 5 core; 24 -> 19 us as AVX2 code).
void accumulate_and_round(float* __restrict acc, const float* __restrict row, Bf16* __restrict dst, int64_t C) {
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) {
    acc[c] += row[c];
    store(dst + c, row[c]);
  }
}

}  // namespace

// Each thread rounds the rows of its RowBlocks block, and both GEMMs that read the copy read
// those rows on the same thread (dinp split by rows, the weight gradient by these blocks:
// gemm_bf16_tn_row_blocks), so plain stores leave it in that core's cache. When the weight
// gradient's GEMM read every row on both cores, a store here first had to take each line back
// from the other core: on a 2-vCPU Zen 5 whose steps slow by ~17% at times (cross-core
// traffic dear, by all signs) this pass then took 2.0-3.5 ms of a 38 ms default-job step.
// Streaming stores avoided that but sent the copy to memory and back, 2-3% of a fast step.
void colsum_accumulate(float* out, const float* x, int64_t N, int64_t C, Bf16* rounded) {
  reduce_rows_into(out, C, N, [&](int64_t begin, int64_t end, float* acc) {
    if (rounded) {
      for (int64_t n = begin; n < end; ++n) accumulate_and_round(acc, x + n * C, rounded + n * C, C);
      return;
    }
    for (int64_t n = begin; n < end; ++n) {
      const float* row = x + n * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) acc[c] += row[c];
    }
  });
}

}  // namespace zt::cpu
