// The FMA peak of this CPU, measured: every thread runs independent register-only fp32 FMAs
// (vfmadd231ps on zmm with AVX-512, on ymm with AVX2), enough accumulators to hide latency,
// so the rate is the cores' issue limit. Benchmarks quote their GFLOP/s as a fraction of it.
#pragma once
#include <immintrin.h>
#include <omp.h>

#include <chrono>

#include "core/cpu/isa.h"

namespace zt::bench {

namespace detail {

constexpr int kFmaAcc = 12;  // 2 FMA pipes x 4-5 cycles latency, with room to spare

__attribute__((target("avx512f"), noinline)) inline float fma_loop_avx512(long iters) {
  __m512 acc[kFmaAcc];
  for (int i = 0; i < kFmaAcc; ++i) acc[i] = _mm512_set1_ps(float(i));
  __m512 a = _mm512_set1_ps(1.0001f), b = _mm512_set1_ps(0.9999f);
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kFmaAcc; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    asm volatile("" : "+v"(a));  // keep the loop from being folded
  }
  float out[16], sum = 0;
  __m512 s = acc[0];
  for (int i = 1; i < kFmaAcc; ++i) s = _mm512_add_ps(s, acc[i]);
  _mm512_storeu_ps(out, s);
  for (float x : out) sum += x;
  return sum;
}

__attribute__((target("avx2,fma"), noinline)) inline float fma_loop_avx2(long iters) {
  __m256 acc[kFmaAcc];
  for (int i = 0; i < kFmaAcc; ++i) acc[i] = _mm256_set1_ps(float(i));
  __m256 a = _mm256_set1_ps(1.0001f), b = _mm256_set1_ps(0.9999f);
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kFmaAcc; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    asm volatile("" : "+x"(a));
  }
  float out[8], sum = 0;
  __m256 s = acc[0];
  for (int i = 1; i < kFmaAcc; ++i) s = _mm256_add_ps(s, acc[i]);
  _mm256_storeu_ps(out, s);
  for (float x : out) sum += x;
  return sum;
}

}  // namespace detail

// The level whose FMA width the peak is measured at: the kernels' (the process's level, so
// ZT_CPU_ISA=avx2 measures ymm FMAs: half the zmm peak on an Intel CPU with two AVX-512 FMA
// ports, the same on Zen 4, which splits a zmm FMA in two), or this CPU's best where that is
// generic (plain C++, vectorized as the compiler likes).
inline cpu::Isa fma_peak_isa() {
  return cpu::process_isa() == cpu::Isa::generic ? cpu::best_isa() : cpu::process_isa();
}

// "avx512 FMA" or "avx2 FMA": the width fma_peak_gflops measures, for the lines that quote it.
inline const char* fma_peak_width() { return fma_peak_isa() >= cpu::Isa::avx512 ? "avx512 FMA" : "avx2 FMA"; }

// GFLOP/s of `threads` threads together at fma_peak_isa()'s width (a CPU without AVX2 reports
// 0). About 0.5 s.
inline double fma_peak_gflops(int threads) {
  const cpu::Isa isa = fma_peak_isa();
  if (isa == cpu::Isa::generic) return 0;
  const double flop_per_iter = detail::kFmaAcc * 2.0 * (isa >= cpu::Isa::avx512 ? 16 : 8);
  const long iters = 20'000'000;
  auto run = [&](long n) {
    volatile float sink = 0;
#pragma omp parallel num_threads(threads)
    sink = isa >= cpu::Isa::avx512 ? detail::fma_loop_avx512(n) : detail::fma_loop_avx2(n);
    (void)sink;
  };
  run(iters / 10);  // warm up the clocks
  const auto t0 = std::chrono::steady_clock::now();
  run(iters);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return double(iters) * flop_per_iter * threads / s * 1e-9;
}

}  // namespace zt::bench
