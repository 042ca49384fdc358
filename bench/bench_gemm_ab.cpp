// The model's GEMMs on three paths, taking turns call by call so that a shared machine's
// phases (its GEMM rate can move 2x within a minute while its FMA peak stays put) hit all
// three alike: fp32 as training runs it (cpu::sgemm: oneDNN with AVX-512, the blocked kernel
// with AVX2), the blocked kernel of the ISA in use on the same fp32 operands
// (cpu::sgemm_blocked_isa), and bf16 as training runs it (cpu::gemm_bf16). Per shape and
// case (the linear layer's forward, input gradient and weight gradient: bench/linear_gemm.h)
// it prints each path's median GFLOP/s over the rounds and the ratios to fp32.
//
//   build/bench/bench_gemm_ab [ROUNDS]        (default 15; ZT_CPU_ISA picks the level)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/fma_peak.h"
#include "bench/linear_gemm.h"
#include "core/cpu/gemm.h"
#include "core/cpu/isa.h"
#include "core/dtype.h"

namespace {

using namespace zt;

struct Shape {
  int64_t rows, in, out;  // a linear layer: rows x in -> rows x out
};

// gpt2-124m at B = 4, T = 64 (qkv, fc, attention projection; the MLP projection is fc's
// input gradient's shape) and the default job (configs/shakespeare-char.yaml).
constexpr Shape kShapes[] = {{256, 768, 2304}, {256, 768, 3072}, {256, 768, 768}, {256, 3072, 768},
                             {1024, 128, 384}, {1024, 128, 512}, {1024, 128, 128}, {1024, 512, 128}};
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 15;
  const int threads = omp_get_max_threads();
  const char* isa = cpu::isa_name(cpu::active_isa());
  std::printf("threads %d, CPU kernels %s, %d rounds; FMA peak %.1f GFLOP/s (%s)\n", threads, isa, rounds,
              bench::fma_peak_gflops(threads), bench::fma_peak_width());
  std::printf("%-20s %-10s %10s %10s %10s %12s %12s\n", "rows x in x out", "case", "fp32", "blocked", "bf16",
              "blocked/fp32", "bf16/fp32");
  for (const Shape& s : kShapes) {
    // Operands as large as any case needs, values in [-1, 1) (bf16: the same values rounded).
    const size_t n = size_t(std::max({s.rows * s.in, s.rows * s.out, s.in * s.out}));
    std::vector<float> a(n), b(n), c(n);
    std::vector<uint16_t> ah(n), bh(n);
    for (size_t i = 0; i < n; ++i) {
      a[i] = float(int(i * 7919 % 2001) - 1000) / 1000.f;
      b[i] = float(int(i * 104729 % 2001) - 1000) / 1000.f;
      ah[i] = f32_to_bf16(a[i]);
      bh[i] = f32_to_bf16(b[i]);
    }
    for (int which = 0; which < 3; ++which) {
      const bench::LinearGemm g = bench::linear_gemm(s.rows, s.in, s.out, which);
      const double flop = 2.0 * double(g.M) * double(g.N) * double(g.K);
      const int calls = std::max(2, int(2e8 / flop));  // ~1 ms of work per timing on 2 cores
      auto run = [&](int path) {
        for (int i = 0; i < calls; ++i) {
          if (path == 0)
            cpu::sgemm(g.ta, g.tb, g.M, g.N, g.K, 1.f, a.data(), g.lda, b.data(), g.ldb, g.beta, c.data(), g.N);
          else if (path == 1)
            cpu::sgemm_blocked_isa(cpu::active_isa(), g.ta, g.tb, g.M, g.N, g.K, 1.f, a.data(), g.lda, b.data(),
                                   g.ldb, g.beta, c.data(), g.N);
          else
            cpu::gemm_bf16(g.ta, g.tb, g.M, g.N, g.K, 1.f, ah.data(), g.lda, bh.data(), g.ldb, g.beta, c.data(),
                           g.N);
        }
      };
      std::vector<double> rate[3];
      for (int path = 0; path < 3; ++path) run(path);  // warm up: packing buffers, oneDNN's JIT
      for (int r = 0; r < rounds; ++r)
        for (int path = 0; path < 3; ++path) {
          const auto t0 = std::chrono::steady_clock::now();
          run(path);
          const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          rate[path].push_back(flop * calls / sec * 1e-9);
        }
      const double f = median(rate[0]), bl = median(rate[1]), bf = median(rate[2]);
      const std::string dims = std::to_string(s.rows) + " x " + std::to_string(s.in) + " x " + std::to_string(s.out);
      std::printf("%-20s %-10s %10.1f %10.1f %10.1f %11.2fx %11.2fx\n", dims.c_str(), bench::kLinearCaseNames[which], f, bl, bf, bl / f,
                  bf / f);
    }
  }
  return 0;
}
