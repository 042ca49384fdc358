// f32 <-> IEEE half conversions in bulk. As plain loops they ran one value at a time (2.6
// values/ns f32 -> f16 and 1.3 back on 2 threads of an Emerald Rapids, against 7.7 for the
// bf16 rounding; gpt2-124m's fp16 step spent a quarter of its time converting), and GCC 12
// leaves _Float16 conversions scalar even in a simd loop where the target has AVX512-FP16
// (it vectorizes them with F16C alone), so at the avx2 level and above they run 8 at a time
// on F16C here. vcvtps2ph with an immediate rounding mode rounds to nearest even as the
// scalar conversion does, whatever MXCSR says.
#include <immintrin.h>

#include <algorithm>

#include "core/cpu/isa.h"
#include "core/cpu/ops.h"
#include "core/dtype.h"

namespace zt::cpu {
namespace {

void to_f16_scalar(uint16_t* d, const float* s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(s[i]);
}
void from_f16_scalar(float* d, const uint16_t* s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = f16_to_f32(s[i]);
}
void round_scalar(float* d, const float* s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = f16_to_f32(f32_to_f16(s[i]));
}

// 8 values at a time; the last n % 8 by the scalar loops.
#define ZT_F16C __attribute__((target("avx,f16c")))

ZT_F16C void to_f16_f16c(uint16_t* d, const float* s, int64_t n) {
  const int64_t whole = n / 8 * 8;
  for (int64_t i = 0; i < whole; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
  to_f16_scalar(d + whole, s + whole, n - whole);
}

ZT_F16C void from_f16_f16c(float* d, const uint16_t* s, int64_t n) {
  const int64_t whole = n / 8 * 8;
  for (int64_t i = 0; i < whole; i += 8)
    _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  from_f16_scalar(d + whole, s + whole, n - whole);
}

ZT_F16C void round_f16c(float* d, const float* s, int64_t n) {
  const int64_t whole = n / 8 * 8;
  for (int64_t i = 0; i < whole; i += 8)
    _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT)));
  round_scalar(d + whole, s + whole, n - whole);
}

// The conversions of the active level: F16C at avx2 and above (the avx2 level requires it).
struct Kernels {
  void (*to)(uint16_t*, const float*, int64_t);
  void (*from)(float*, const uint16_t*, int64_t);
  void (*round)(float*, const float*, int64_t);
};
const Kernels& kernels() {
  static constexpr Kernels f16c{to_f16_f16c, from_f16_f16c, round_f16c}, scalar{to_f16_scalar, from_f16_scalar, round_scalar};
  return active_isa() >= Isa::avx2 ? f16c : scalar;
}

// f over [0, n) in chunks shared among the threads (one thread for small n).
template <typename Dst, typename Src>
void in_chunks(Dst* d, const Src* s, int64_t n, void (*f)(Dst*, const Src*, int64_t)) {
  constexpr int64_t kChunk = 16384;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) f(d + c * kChunk, s + c * kChunk, std::min(kChunk, n - c * kChunk));
}

}  // namespace

void to_f16_one_thread(uint16_t* dst, const float* src, int64_t n) { kernels().to(dst, src, n); }
void to_f16(uint16_t* dst, const float* src, int64_t n) { in_chunks(dst, src, n, kernels().to); }
void from_f16(float* dst, const uint16_t* src, int64_t n) { in_chunks(dst, src, n, kernels().from); }
void round_to_f16(float* dst, const float* src, int64_t n) { in_chunks(dst, src, n, kernels().round); }

}  // namespace zt::cpu
