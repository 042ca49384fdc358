// cpu::reduce_rows_into (core/cpu/reduce.h): the row blocks' partials are added in block order
// onto what out held, and each block's partial starts a cache line of its own, so that threads
// updating their partials once per row never write the same line.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "core/cpu/reduce.h"

namespace zt {
namespace {

TEST(CpuReduce, PartialsStartOwnCacheLinesAndSumInBlockOrder) {
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    for (int64_t width : {1, 5, 16, 17, 65, 128, 130}) {
      SCOPED_TRACE("threads " + std::to_string(threads) + ", width " + std::to_string(width));
      const int64_t rows = 37;
      std::vector<float> x(rows * width), out(width, 0.5f);
      for (int64_t i = 0; i < rows * width; ++i) x[i] = 0.25f * static_cast<float>(i % 11) - 1.f;
      std::vector<uintptr_t> partials(threads, 0);
      cpu::reduce_rows_into(out.data(), width, rows, [&](int64_t begin, int64_t end, float* acc) {
        partials[omp_get_thread_num()] = reinterpret_cast<uintptr_t>(acc);
        for (int64_t c = 0; c < width; ++c) EXPECT_EQ(acc[c], 0.f) << "partial not zeroed at " << c;
        for (int64_t n = begin; n < end; ++n)
          for (int64_t c = 0; c < width; ++c) acc[c] += x[n * width + c];
      });
      std::set<uintptr_t> lines;
      for (uintptr_t p : partials) {
        ASSERT_NE(p, 0u);
        EXPECT_EQ(p % 64, 0u) << "a partial does not start a cache line";
        for (int64_t c = 0; c < width; ++c) lines.insert((p + 4 * c) / 64);
      }
      EXPECT_EQ(static_cast<int64_t>(lines.size()), threads * ((width + 15) / 16)) << "two partials share a line";
      // The expected sums: each block's rows in order, blocks added in order onto 0.5.
      const cpu::RowBlocks blocks(rows);
      for (int64_t c = 0; c < width; ++c) {
        float expect = 0.5f;
        for (int blk = 0; blk < blocks.count; ++blk) {
          float partial = 0.f;
          for (int64_t n = blocks.begin(blk); n < blocks.end(blk); ++n) partial += x[n * width + c];
          expect += partial;
        }
        EXPECT_EQ(out[c], expect) << "column " << c;
      }
    }
  }
  omp_set_num_threads(saved);
}

}  // namespace
}  // namespace zt
