#include <omp.h>
#include <xmmintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/cpu/f64_lanes.h"
#include "core/cpu/ops.h"
#include "core/dtype.h"

namespace zt::cpu {

// Buffers this large are out of cache long before anything reads them again (gpt2-124m's 500
// MB of gradients, zeroed at each step's start and written in backward): fill them with
// non-temporal stores, which write whole lines without reading them first. On 2 threads of an
// Emerald Rapids 124M floats took 11 ms this way against 20 with plain stores.
constexpr int64_t kStreamFillBytes = int64_t{32} << 20;

void fill(float* x, float value, int64_t n) {
  if (n * static_cast<int64_t>(sizeof(float)) < kStreamFillBytes) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) x[i] = value;
    return;
  }
  fill_streaming(x, value, n);
}

void fill_streaming(float* x, float value, int64_t n) {
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
    int64_t i = n * t / T;
    const int64_t end = n * (t + 1) / T;
    for (; i < end && reinterpret_cast<uintptr_t>(x + i) % 16 != 0; ++i) x[i] = value;
    const __m128 v = _mm_set1_ps(value);
    for (; i + 4 <= end; i += 4) _mm_stream_ps(x + i, v);
    for (; i < end; ++i) x[i] = value;
    _mm_sfence();  // the streamed stores are visible before the region's barrier
  }
}

void axpy(float* y, float a, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void sum_bf16(uint16_t* y, const uint16_t* a, const uint16_t* b, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_bf16(bf16_to_f32(a[i]) + bf16_to_f32(b[i]));
}

void scale(float* x, float s, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

// Each chunk of kSumChunk values is summed alone in F64Lanes' order and the chunks are added
// in order, so the total depends neither on the thread count nor on how chunks are grouped.
// Each thread sums kStreams chunks at once: one read stream per thread reached 19 GB/s on 2
// threads of an Emerald Rapids (gpt2-124m's gradient norm: 25 ms), four 24-27 GB/s.
double sum_squares(const float* x, int64_t n) {
  constexpr int64_t kSumChunk = int64_t{1} << 16, kStreams = 4, kLanes = F64Lanes::kLanes;
  const int64_t chunks = (n + kSumChunk - 1) / kSumChunk, groups = (chunks + kStreams - 1) / kStreams;
  std::vector<double> partial(chunks, 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t c0 = g * kStreams, count = std::min(kStreams, chunks - c0);
    F64Lanes acc[kStreams];
    // The whole vectors every chunk of the group has (only the last chunk is short), in turn.
    const int64_t shortest = std::min(kSumChunk, n - (c0 + count - 1) * kSumChunk);
    const int64_t common = shortest / kLanes * kLanes;
    for (int64_t i = 0; i < common; i += kLanes)
      for (int64_t c = 0; c < count; ++c) {
        const float* p = x + (c0 + c) * kSumChunk + i;
        acc[c].add(p, p);
      }
    for (int64_t c = 0; c < count; ++c) {
      const float* chunk = x + (c0 + c) * kSumChunk;
      const int64_t len = std::min(kSumChunk, n - (c0 + c) * kSumChunk), whole = len / kLanes * kLanes;
      for (int64_t i = common; i < whole; i += kLanes) acc[c].add(chunk + i, chunk + i);
      acc[c].add_tail(chunk + whole, chunk + whole, len - whole);
      partial[c0 + c] = acc[c].total();
    }
  }
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace zt::cpu
