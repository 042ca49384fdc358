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

// Each thread rounds the rows of its RowBlocks block. Plain stores leave them in its cache,
// the right place when the same thread reads them next (dinp split by rows, a weight gradient
// by these blocks: gemm_bf16_tn_row_blocks). When the other core reads them too (a weight
// gradient split by columns), the block was last read there as well, and each plain store
// must first take its line back from that core: on a 2-vCPU Zen 5 whose steps slow by ~17% at
// times (cross-core traffic dear, by all signs) the pass took 2.0-3.5 ms of a 38 ms
// default-job step, 0.55-1.2 streamed (staged in L1, then non-temporal stores); gpt2-124m's
// passes 7-11 ms per step plain, 4.2-4.3 streamed. Streaming sends the copy to memory and
// back, which cost the default job 2-3% of a fast-phase step before its weight gradients
// went by row blocks.
void colsum_accumulate(float* out, const float* x, int64_t N, int64_t C, Bf16* rounded, bool stream) {
  reduce_rows_into(out, C, N, [&](int64_t begin, int64_t end, float* acc) {
    if (rounded && !stream) {
      for (int64_t n = begin; n < end; ++n) accumulate_and_round(acc, x + n * C, rounded + n * C, C);
      return;
    }
    if (rounded) {
      constexpr int64_t kStage = 512;  // rounded values staged in L1, then streamed out
      Bf16 stage[kStage];
      for (int64_t n = begin; n < end; ++n)
        for (int64_t c0 = 0; c0 < C; c0 += kStage) {
          const int64_t len = std::min(kStage, C - c0);
          accumulate_and_round(acc + c0, x + n * C + c0, stage, len);
          copy_streaming(rounded + n * C + c0, stage, len);
        }
      _mm_sfence();  // the streamed copy is visible before the region's barrier
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
