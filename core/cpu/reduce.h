// Deterministic parallel reductions: fixed chunks per thread, summed in a fixed order, so a
// result depends on the thread count at most, never on scheduling.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace zt::cpu {

// The static row blocks of a row-parallel reduction: one per thread (at most one per row),
// block blk on thread blk, holding rows [begin(blk), end(blk)). Passes that split the same
// rows alike (the bf16 copy of a linear's dout and its weight gradient) touch, in each thread,
// only the rows that thread wrote.
struct RowBlocks {
  explicit RowBlocks(int64_t rows)
      : rows(rows), count(static_cast<int>(std::min<int64_t>(omp_get_max_threads(), std::max<int64_t>(rows, 1)))) {}
  int64_t begin(int blk) const { return rows * blk / count; }
  int64_t end(int blk) const { return rows * (blk + 1) / count; }
  int64_t rows;
  int count;
};

// Runs body(row_begin, row_end, partial) over RowBlocks(rows), one zeroed `width`-float
// partial per block, then adds the partials into out in block order. Each partial starts on a
// cache line of its own: bodies update all of it once per row, and two threads' partials
// sharing a line at their boundary made two threads slower than one (LayerNorm backward,
// 1024 x 128).
template <typename Body>
void reduce_rows_into(float* out, int64_t width, int64_t rows, Body&& body) {
  constexpr int64_t kLine = 64 / sizeof(float);
  const RowBlocks rb(rows);
  const int blocks = rb.count;
  const int64_t stride = (width + kLine - 1) / kLine * kLine;
  std::vector<float> storage(static_cast<size_t>(blocks * stride + kLine), 0.f);
  const auto misalign = reinterpret_cast<uintptr_t>(storage.data()) % 64 / sizeof(float);
  float* partial = storage.data() + (misalign ? kLine - static_cast<int64_t>(misalign) : 0);
#pragma omp parallel for schedule(static, 1) num_threads(blocks)
  for (int blk = 0; blk < blocks; ++blk) body(rb.begin(blk), rb.end(blk), partial + blk * stride);
  for (int blk = 0; blk < blocks; ++blk) {
    const float* p = partial + blk * stride;
#pragma omp simd
    for (int64_t c = 0; c < width; ++c) out[c] += p[c];
  }
}

}  // namespace zt::cpu
