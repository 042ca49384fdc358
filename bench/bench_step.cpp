// End-to-end training step benchmark: forward + backward + optimizer step of a config's
// model on random tokens. Prints ms/step, tokens/s and achieved GFLOP/s, as a fraction of the
// CPU's FMA peak and of the sgemm rate at the model's MLP shape, both measured in the same run.
//
//   build/bench/bench_step configs/gpt2-124m.yaml [--steps N] [--warmup N] [--set k=v]...
#include <omp.h>

#include <chrono>
#include <cstdio>
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

int main(int argc, char** argv) {
  try {
    CliArgs cli("bench_step", std::vector<std::string>(argv + 1, argv + argc), {"steps", "warmup"}, {}, {"set"});
    cli.expect_positionals(1, 1);
    Config cfg = load_config(cli.positional(0, "CONFIG.yaml"), cli.all("set"));
    if (cfg.model.vocab_size == 0) cfg.model.vocab_size = 65;  // char-level default corpus
    const int64_t steps = cli.get_int("steps", 5), warmup = cli.get_int("warmup", 2);
    if (cfg.parallel.threads > 0) omp_set_num_threads(static_cast<int>(cfg.parallel.threads));

    BenchModel bench(cfg);
    const ModelSpec& spec = bench.spec;
    Transformer& model = bench.model;
    Engine& engine = bench.engine;
    const int64_t B = bench.B, T = bench.T, accum = cfg.train.grad_accum;
    double t_zero = 0, t_fwd = 0, t_bwd = 0, t_opt = 0;
    auto lap = [](Clock::time_point& t) {
      auto now = Clock::now();
      double ms = std::chrono::duration<double, std::milli>(now - t).count();
      t = now;
      return ms;
    };
    auto one_step = [&] {
      auto t = Clock::now();
      engine.zero_grads();
      t_zero += lap(t);
      for (int64_t m = 0; m < accum; ++m) {
        engine.begin_micro_batch(m + 1 == accum);
        Stream s = bench.micro_batch(1.f / static_cast<float>(B * T * accum));
        model.forward(s, &engine);
        t_fwd += lap(t);
        model.backward(s, &engine);
        t_bwd += lap(t);
      }
      engine.step(1e-4f);
      t_opt += lap(t);
    };
    for (int64_t i = 0; i < warmup; ++i) one_step();
    t_zero = t_fwd = t_bwd = t_opt = 0;
    auto t0 = Clock::now();
    for (int64_t i = 0; i < steps; ++i) one_step();
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / steps;
    const double tokens_per_step = static_cast<double>(B * T * accum);
    const double gflops = spec.train_flops_per_token(T) * tokens_per_step / (ms / 1e3) / 1e9;
    const double peak = sgemm_gflops(B * T, 4 * spec.d_model, spec.d_model);
    const double fma_peak = bench::fma_peak_gflops(omp_get_max_threads());
    std::printf("config      %s (%s, %lld params, B=%lld T=%lld accum=%lld)\n", cli.positional(0, "").c_str(),
                std::string(family_name(spec.family)).c_str(), static_cast<long long>(model.num_params()),
                static_cast<long long>(B), static_cast<long long>(T), static_cast<long long>(accum));
    std::printf("threads     %d, compute %s, CPU kernels %s\n", omp_get_max_threads(),
                std::string(to_string(cfg.precision.compute)).c_str(), cpu::isa_description().c_str());
    std::printf("ms/step     %.1f\n", ms);
    std::printf("breakdown   zero grads %.1f ms | forward %.1f ms | backward %.1f ms | optimizer %.1f ms\n",
                t_zero / steps, t_fwd / steps, t_bwd / steps, t_opt / steps);
    std::printf("tokens/s    %.0f\n", tokens_per_step / (ms / 1e3));
    std::printf("GFLOP/s     %.1f  (model FLOPs: 6 per weight per token + attention)\n", gflops);
    std::printf("sgemm peak  %.1f GFLOP/s at (%lld x %lld x %lld); step reaches %.0f%% of it\n", peak,
                static_cast<long long>(B * T), static_cast<long long>(4 * spec.d_model),
                static_cast<long long>(spec.d_model), 100.0 * gflops / peak);
    std::printf("FMA peak    %.1f GFLOP/s (%s, %d threads); step reaches %.0f%% of it\n", fma_peak,
                cpu::isa_name(cpu::best_isa()), omp_get_max_threads(), 100.0 * gflops / fma_peak);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
