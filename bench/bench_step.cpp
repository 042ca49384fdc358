// End-to-end training step benchmark: forward + backward + optimizer step of a config's
// model on random tokens. Prints ms/step, tokens/s and achieved GFLOP/s, as a fraction of the
// CPU's FMA peak and of the sgemm rate at the model's MLP shape, both measured in the same run.
//
//   build/bench/bench_step configs/gpt2-124m.yaml [--steps N] [--warmup N] [--set k=v]...
//                          [--versus k=v]...
//
// --versus builds a second model from the config with these overrides on top (e.g.
// precision.compute=bf16) and alternates steps of the two in this process, so that a shared
// machine's noise, which comes and goes over seconds, hits both alike; it prints both and the
// ratio of their median step times.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_model.h"
#include "bench/fma_peak.h"
#include "core/cpu/gemm.h"
#include "launch/cli.h"

using namespace zt;
using Clock = std::chrono::steady_clock;

static double sgemm_gflops(int64_t M, int64_t N, int64_t K) {
  std::vector<float> a(M * K, 0.5f), b(N * K, 0.25f), c(M * N);
  auto run = [&] { cpu::sgemm(false, true, M, N, K, 1.f, a.data(), K, b.data(), K, 0.f, c.data(), N); };
  run();
  int reps = 0;
  auto t0 = Clock::now();
  double elapsed = 0;
  while (elapsed < 0.5) {
    run();
    ++reps;
    elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  return 2.0 * M * N * K * reps / elapsed / 1e9;
}

namespace {

// One model under test and what its timed steps took.
struct Timed {
  Timed(const Config& c, std::string label) : cfg(c), name(std::move(label)), bench(c) {}
  Config cfg;
  std::string name;
  BenchModel bench;
  double zero = 0, fwd = 0, bwd = 0, opt = 0;
  std::vector<double> step_ms;  // per timed step

  void step(bool timed) {
    auto lap = [](Clock::time_point& t) {
      auto now = Clock::now();
      double ms = std::chrono::duration<double, std::milli>(now - t).count();
      t = now;
      return ms;
    };
    const int64_t accum = cfg.train.grad_accum;
    const auto start = Clock::now();
    auto t = start;
    double z = 0, f = 0, b = 0;
    bench.engine.zero_grads();
    z += lap(t);
    for (int64_t m = 0; m < accum; ++m) {
      bench.engine.begin_micro_batch(m + 1 == accum);
      Stream s = bench.micro_batch(1.f / static_cast<float>(bench.B * bench.T * accum));
      bench.model.forward(s, &bench.engine);
      f += lap(t);
      bench.model.backward(s, &bench.engine);
      b += lap(t);
    }
    bench.engine.step(1e-4f);
    const double o = lap(t);
    if (!timed) return;
    zero += z, fwd += f, bwd += b, opt += o;
    step_ms.push_back(std::chrono::duration<double, std::milli>(t - start).count());
  }

  double median_ms() const {
    std::vector<double> v = step_ms;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }

  void print(double sgemm_peak, double fma_peak) const {
    const ModelSpec& spec = bench.spec;
    const double steps = static_cast<double>(step_ms.size());
    double total = 0;
    for (double ms : step_ms) total += ms;
    // Throughput at the median step: on a shared machine a few slow steps move the mean.
    const double ms = total / steps, median = median_ms();
    const double tokens_per_step = static_cast<double>(bench.B * bench.T * cfg.train.grad_accum);
    const double gflops = spec.train_flops_per_token(bench.T) * tokens_per_step / (median / 1e3) / 1e9;
    std::printf("config      %s (%s, %lld params, B=%lld T=%lld accum=%lld)\n", name.c_str(),
                std::string(family_name(spec.family)).c_str(), static_cast<long long>(bench.model.num_params()),
                static_cast<long long>(bench.B), static_cast<long long>(bench.T),
                static_cast<long long>(cfg.train.grad_accum));
    std::printf("threads     %d, compute %s, CPU kernels %s\n", omp_get_max_threads(),
                std::string(to_string(cfg.precision.compute)).c_str(), cpu::isa_description().c_str());
    std::printf("ms/step     %.1f  (median %.1f, fastest %.1f, slowest %.1f)\n", ms, median,
                *std::min_element(step_ms.begin(), step_ms.end()), *std::max_element(step_ms.begin(), step_ms.end()));
    std::printf("breakdown   zero grads %.1f ms | forward %.1f ms | backward %.1f ms | optimizer %.1f ms\n",
                zero / steps, fwd / steps, bwd / steps, opt / steps);
    std::printf("tokens/s    %.0f  (at the median step, as below)\n", tokens_per_step / (median / 1e3));
    std::printf("GFLOP/s     %.1f  (model FLOPs: 6 per weight per token + attention)\n", gflops);
    std::printf("sgemm peak  %.1f GFLOP/s at (%lld x %lld x %lld); step reaches %.0f%% of it\n", sgemm_peak,
                static_cast<long long>(bench.B * bench.T), static_cast<long long>(4 * spec.d_model),
                static_cast<long long>(spec.d_model), 100.0 * gflops / sgemm_peak);
    std::printf("FMA peak    %.1f GFLOP/s (%s, %d threads); step reaches %.0f%% of it\n", fma_peak,
                bench::fma_peak_width(), omp_get_max_threads(), 100.0 * gflops / fma_peak);
  }
};

}  // namespace

int main(int argc, char** argv) {
  try {
    CliArgs cli("bench_step", std::vector<std::string>(argv + 1, argv + argc), {"steps", "warmup"}, {},
                {"set", "versus"});
    cli.expect_positionals(1, 1);
    const std::string path = cli.positional(0, "CONFIG.yaml");
    auto config = [&](std::vector<std::string> overrides) {
      Config c = load_config(path, overrides);
      if (c.model.vocab_size == 0) c.model.vocab_size = 65;  // char-level default corpus
      return c;
    };
    const std::vector<std::string> sets = cli.all("set"), versus = cli.all("versus");
    const int64_t steps = cli.get_int("steps", 5), warmup = cli.get_int("warmup", 2);
    const Config cfg = config(sets);
    if (cfg.parallel.threads > 0) omp_set_num_threads(static_cast<int>(cfg.parallel.threads));

    std::vector<std::unique_ptr<Timed>> runs;
    runs.push_back(std::make_unique<Timed>(cfg, path));
    if (!versus.empty()) {
      std::vector<std::string> both = sets;
      std::string label = path;
      for (const std::string& kv : versus) both.push_back(kv), label += " " + kv;
      runs.push_back(std::make_unique<Timed>(config(both), label));
    }
    for (int64_t i = 0; i < warmup; ++i)
      for (auto& r : runs) r->step(false);
    for (int64_t i = 0; i < steps; ++i)
      for (auto& r : runs) r->step(true);

    const double sgemm_peak = sgemm_gflops(runs[0]->bench.B * runs[0]->bench.T, 4 * runs[0]->bench.spec.d_model,
                                           runs[0]->bench.spec.d_model);
    const double fma_peak = bench::fma_peak_gflops(omp_get_max_threads());
    for (size_t i = 0; i < runs.size(); ++i) {
      if (i > 0) std::printf("\n");
      runs[i]->print(sgemm_peak, fma_peak);
    }
    if (runs.size() == 2)
      std::printf("\nversus      median step %.1f ms against %.1f ms: the second runs at %.2fx the speed of the first\n",
                  runs[1]->median_ms(), runs[0]->median_ms(), runs[0]->median_ms() / runs[1]->median_ms());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
