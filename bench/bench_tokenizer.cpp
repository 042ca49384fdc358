// BPE encode throughput in MB/s of text: one thread from a cold piece cache (the first pass
// over the text), one thread warm (the steady state of `zt data prepare`), and every thread
// on parallel chunks as `zt data prepare` runs them (reported per core).
//
//   build/bench/bench_tokenizer TOKENIZER [TEXT=data/tinyshakespeare.txt] [REPEATS=5]
//   bash bench/tokenizer.sh   # trains a GPT-2-size (50k) vocabulary first, then runs this
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/data/tokenizer.h"

namespace {

double seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s TOKENIZER [TEXT] [REPEATS]\n", argv[0]);
    return 2;
  }
  try {
    const auto tok = zt::load_tokenizer(argv[1]);
    const std::string text = zt::read_text_file(argc > 2 ? argv[2] : "data/tinyshakespeare.txt");
    const int repeats = argc > 3 ? std::max(1, std::atoi(argv[3])) : 5;
    const double mb = static_cast<double>(text.size()) / 1e6;
    std::printf("tokenizer %s (%s, vocab %lld), text %.2f MB, CPU %s\n", argv[1], tok->kind().c_str(),
                static_cast<long long>(tok->vocab_size()), mb, cpu_name().c_str());

    double t0 = seconds();
    const size_t n_tokens = tok->encode(text).size();
    const double cold = mb / (seconds() - t0);
    double best = 0;
    for (int r = 0; r < repeats; ++r) {
      t0 = seconds();
      if (tok->encode(text).size() != n_tokens) return 1;
      best = std::max(best, mb / (seconds() - t0));
    }
    std::printf("1 thread:  %.1f MB/s cold cache, %.1f MB/s warm (best of %d); %zu tokens, %.2f bytes/token\n", cold,
                best, repeats, n_tokens, static_cast<double>(text.size()) / static_cast<double>(n_tokens));

    // The text cut into one chunk per thread and encoded in parallel, each thread with its own cache.
    const int threads = omp_get_max_threads();
    if (threads > 1) {
      std::vector<std::string> chunks;
      const size_t step = text.size() / threads + 1;
      for (size_t at = 0; at < text.size(); at += step) chunks.push_back(text.substr(at, step));
      double best_all = 0;
      for (int r = 0; r < repeats + 1; ++r) {  // the first round warms the per-thread caches
        t0 = seconds();
        size_t total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static, 1)
        for (size_t i = 0; i < chunks.size(); ++i) total += tok->encode(chunks[i]).size();
        if (r > 0) best_all = std::max(best_all, mb / (seconds() - t0));
      }
      std::printf("%d threads: %.1f MB/s warm, %.1f MB/s per core\n", threads, best_all, best_all / threads);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_tokenizer: %s\n", e.what());
    return 1;
  }
  return 0;
}
