#include <omp.h>
#include <xmmintrin.h>

#include <cstdint>
#include <vector>

#include "core/cpu/ops.h"
#include "core/dtype.h"

namespace zt::cpu {

// Buffers this large are out of cache long before anything reads them again (gpt2-124m's 500
// MB of gradients, zeroed at each step's start and written in backward): fill them with
// non-temporal stores, which write whole lines without reading them first. On 2 threads of an
// Emerald Rapids 124M floats took 11 ms so against 20 with plain stores.
constexpr int64_t kStreamFillBytes = int64_t{32} << 20;

void fill(float* x, float value, int64_t n) {
  if (n * static_cast<int64_t>(sizeof(float)) < kStreamFillBytes) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) x[i] = value;
    return;
  }
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

// Fixed 64 Ki-element chunks summed in order: the result is independent of the thread count.
double sum_squares(const float* x, int64_t n) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(chunks, 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < chunks; ++k) {
    const int64_t begin = k * kChunk, end = std::min(n, begin + kChunk);
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = begin; i < end; ++i) s += static_cast<double>(x[i]) * x[i];
    partial[k] = s;
  }
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace zt::cpu
