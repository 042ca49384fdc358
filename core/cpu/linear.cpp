#include <emmintrin.h>

#include <algorithm>
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

// dst[0, n) = src[0, n) with non-temporal stores wherever dst is 16-byte aligned.
void copy_streaming(Bf16* __restrict dst, const Bf16* __restrict src, int64_t n) {
  int64_t i = 0;
  for (; i < n && reinterpret_cast<uintptr_t>(dst + i) % 16 != 0; ++i) dst[i] = src[i];
  for (; i + 8 <= n; i += 8)
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i), _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
  for (; i < n; ++i) dst[i] = src[i];
}

}  // namespace

// The rounded copy goes out with streaming stores. Its block was last read by every thread
// (a weight gradient's GEMM reads all of dout, and the allocator hands the block out again),
// so an ordinary store must first take each line back from the other cores' caches. On a
// 2-vCPU Zen 5 whose steps slow down by ~17% at times (cross-core traffic dear, by all signs),
// this pass then took 2.0-3.5 ms of a 38 ms default-job step, against 0.45 ms for fp32's
// plain sum; streamed, 0.55-1.2 ms, and the step ran 3-6% faster. The price: the GEMMs read
// the copy from memory, not cache, 0.6-1.8% of the step when cross-core traffic is cheap.
void colsum_accumulate(float* out, const float* x, int64_t N, int64_t C, Bf16* rounded) {
  reduce_rows_into(out, C, N, [&](int64_t begin, int64_t end, float* acc) {
    if (!rounded) {
      for (int64_t n = begin; n < end; ++n) {
        const float* row = x + n * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) acc[c] += row[c];
      }
      return;
    }
    constexpr int64_t kStage = 512;  // rounded values staged in L1, then streamed out
    Bf16 stage[kStage];
    for (int64_t n = begin; n < end; ++n)
      for (int64_t c0 = 0; c0 < C; c0 += kStage) {
        const int64_t len = std::min(kStage, C - c0);
        accumulate_and_round(acc + c0, x + n * C + c0, stage, len);
        copy_streaming(rounded + n * C + c0, stage, len);
      }
    _mm_sfence();  // the streamed copy is visible before the region's barrier
  });
}

}  // namespace zt::cpu
