// What the profiler's instrumentation costs: a span with recording off and on, the spans a
// training step of a config records, and so the share of step time the instrumentation
// takes when profiling is off (the spans stay compiled in).
//
//   build/bench/bench_profiler [CONFIG.yaml] [--steps N]
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/bench_model.h"
#include "core/profiler.h"
#include "launch/cli.h"

using namespace zt;
using Clock = std::chrono::steady_clock;

static double ns_per_span(int64_t n) {
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < n; ++i) {
    profiler::Scope s(profiler::Category::forward, "bench");
    asm volatile("" ::: "memory");  // keep the loop
  }
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / n;
}

int main(int argc, char** argv) {
  try {
    CliArgs cli("bench_profiler", std::vector<std::string>(argv + 1, argv + argc), {"steps"}, {}, {"set"});
    cli.expect_positionals(0, 1);
    const std::string path = cli.positionals().empty() ? "configs/shakespeare-char.yaml" : cli.positionals()[0];
    Config cfg = load_config(path, cli.all("set"));
    if (cfg.model.vocab_size == 0) cfg.model.vocab_size = 65;
    const int64_t steps = cli.get_int("steps", 5);

    const double off_ns = ns_per_span(50'000'000);
    profiler::start(0);
    const double on_ns = ns_per_span(1'000'000);
    profiler::stop();

    BenchModel bench(cfg);
    auto one_step = [&] {
      profiler::Scope step(profiler::Category::step, "step");
      bench.engine.zero_grads();
      bench.engine.begin_micro_batch(true);
      Stream s = bench.micro_batch(1.f / static_cast<float>(bench.B * bench.T));
      bench.model.forward(s, &bench.engine);
      bench.model.backward(s, &bench.engine);
      profiler::Scope opt(profiler::Category::optimizer, "optimizer_step");
      bench.engine.step(1e-4f);
    };
    auto time_steps = [&] {
      const auto t0 = Clock::now();
      for (int64_t i = 0; i < steps; ++i) one_step();
      return std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / steps;
    };
    one_step();  // warm up buffers
    const double off_ms = time_steps();
    profiler::start(0);
    const double on_ms = time_steps();
    profiler::stop();
    size_t spans = 0;
    for (const auto& t : profiler::collect()) spans += t.spans.size();
    const double per_step = static_cast<double>(spans) / steps;

    std::printf("config            %s (%d threads)\n", path.c_str(), omp_get_max_threads());
    std::printf("span, recording off  %.2f ns\n", off_ns);
    std::printf("span, recording on   %.1f ns\n", on_ns);
    std::printf("spans per step    %.0f (single process; collectives add one per op under mpirun/zt launch)\n", per_step);
    std::printf("step, off / on    %.2f ms / %.2f ms\n", off_ms, on_ms);
    std::printf("cost when off     %.5f%% of step time (spans x off cost / step time)\n",
                100.0 * per_step * off_ns * 1e-6 / off_ms);
    std::printf("cost when on      %.4f%% of step time (spans x on cost / step time)\n",
                100.0 * per_step * on_ns * 1e-6 / off_ms);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
