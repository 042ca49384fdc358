// The FMA peak this CPU reaches (bench/fma_peak.h) on one thread and on every thread: the
// denominator of every "% of peak" this project quotes.
//
//   build/bench/bench_fma_peak
#include <omp.h>

#include <cstdio>

#include "bench/fma_peak.h"

int main() {
  const int threads = omp_get_max_threads();
  const double one = zt::bench::fma_peak_gflops(1), all = zt::bench::fma_peak_gflops(threads);
  std::printf("FMA peak (%s): %.1f GFLOP/s on 1 thread, %.1f GFLOP/s on %d threads\n",
              zt::bench::fma_peak_width(), one, all, threads);
  return 0;
}
