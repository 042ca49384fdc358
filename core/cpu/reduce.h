// Deterministic parallel reductions: fixed chunks per thread, summed in a fixed order, so a
// result depends on the thread count at most, never on scheduling.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace zt::cpu {

// Runs body(row_begin, row_end, partial) over static row blocks, one zeroed `width`-float
// partial per block, then adds the partials into out in block order.
template <typename Body>
void reduce_rows_into(float* out, int64_t width, int64_t rows, Body&& body) {
  const int blocks = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), std::max<int64_t>(rows, 1)));
  std::vector<float> partial(static_cast<size_t>(blocks) * width, 0.f);
#pragma omp parallel for schedule(static, 1) num_threads(blocks)
  for (int blk = 0; blk < blocks; ++blk) {
    int64_t begin = rows * blk / blocks, end = rows * (blk + 1) / blocks;
    body(begin, end, partial.data() + static_cast<int64_t>(blk) * width);
  }
  for (int blk = 0; blk < blocks; ++blk) {
    const float* p = partial.data() + static_cast<int64_t>(blk) * width;
#pragma omp simd
    for (int64_t c = 0; c < width; ++c) out[c] += p[c];
  }
}

}  // namespace zt::cpu
