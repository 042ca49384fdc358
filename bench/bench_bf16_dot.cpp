// Register-only throughput of the two AVX-512 instructions a bf16 GEMM can be built on:
// vfmadd231ps (fp32 FMA, 32 FLOP per zmm) and vdpbf16ps (bf16 pair dot product into fp32,
// 64 FLOP per zmm). 24 independent accumulators hide latency, so each rate is the core's
// issue limit. On Zen 5 vdpbf16ps reached about half the FLOP rate of vfmadd231ps (80-86
// against 170-174 GFLOP/s per core); on Zen 4 twice it (235 against 117: both retire one zmm
// per cycle). Hence two AVX-512 bf16 GEMM kernels (core/cpu/gemm_avx512.cpp widens to fp32
// FMAs, gemm_avx512_bf16.cpp runs vdpbf16ps) and Isa::avx512bf16 the default on Zen 4 only.
//
//   build/bench/bench_bf16_dot
#include <immintrin.h>

#include <chrono>
#include <cstdio>

#include "bench/fma_peak.h"

// GCC 12's _mm512_reduce_add_ps reads an _mm512_undefined_ps() operand (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace {

constexpr int kAcc = 24;
constexpr long kIters = 20'000'000;

template <typename F>
double gflops(F body, double flop_per_iter) {
  body(kIters / 10);  // warm up the clock
  const auto t0 = std::chrono::steady_clock::now();
  body(kIters);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return double(kIters) * flop_per_iter / s * 1e-9;
}

__attribute__((target("avx512f,avx512bf16"), noinline)) float dpbf16_loop(long iters) {
  __m512 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_set1_ps(float(i));
  __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = (__m512bh)_mm512_set1_epi32(0x3f803f81);
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    asm volatile("" : "+v"(a));
  }
  __m512 s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

}  // namespace

int main() {
  if (!__builtin_cpu_supports("avx512f")) {
    std::printf("this CPU has no AVX-512\n");
    return 0;
  }
  volatile float sink = 0;
  const double fma = gflops([&](long n) { sink = zt::bench::detail::fma_loop_avx512(n); },
                            zt::bench::detail::kFmaAcc * 32.0);
  std::printf("vfmadd231ps zmm  %7.1f GFLOP/s per core\n", fma);
  if (!__builtin_cpu_supports("avx512bf16")) {
    std::printf("vdpbf16ps        (this CPU has no AVX512-BF16)\n");
    return 0;
  }
  const double dp = gflops([&](long n) { sink = dpbf16_loop(n); }, kAcc * 64.0);
  std::printf("vdpbf16ps zmm    %7.1f GFLOP/s per core (%.2fx the fp32 FMA rate)\n", dp, dp / fma);
  return 0;
}
