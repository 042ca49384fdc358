#include "core/cpu/isa.h"

#include <atomic>
#include <cstdlib>
#include <string_view>

#include "core/error.h"

namespace zt::cpu {
namespace {

constexpr Isa kLevels[] = {Isa::generic, Isa::avx2, Isa::avx512};

// ZT_CPU_ISA, validated against the CPU; the best level when unset or empty.
Isa from_environment() {
  const char* env = std::getenv("ZT_CPU_ISA");
  if (!env || !*env) return best_isa();
  const std::string_view want(env);
  for (Isa isa : kLevels) {
    if (want != isa_name(isa)) continue;
    if (isa > best_isa())
      fail("ZT_CPU_ISA={}: this CPU supports only {} (ZT_CPU_ISA may lower the kernels' ISA, not raise it)", want,
           isa_name(best_isa()));
    return isa;
  }
  fail("ZT_CPU_ISA={}: must be one of avx512, avx2, generic", want);
}

std::atomic<int> g_override{-1};  // a ScopedIsa's level, or -1

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::generic: return "generic";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

Isa best_isa() {
  // __builtin_cpu_supports also checks that the OS saves the wider registers (XCR0).
  static const Isa isa = [] {
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
      return Isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
    return Isa::generic;
  }();
  return isa;
}

Isa process_isa() {
  static const Isa isa = from_environment();
  return isa;
}

Isa active_isa() {
  const int forced = g_override.load(std::memory_order_relaxed);
  return forced >= 0 ? static_cast<Isa>(forced) : process_isa();
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : kLevels)
    if (isa <= best_isa()) out.push_back(isa);
  return out;
}

std::string isa_description() {
  const Isa isa = active_isa();
  if (isa == best_isa()) return isa_name(isa);
  return std::string(isa_name(isa)) + " (forced; this CPU has " + isa_name(best_isa()) + ")";
}

ScopedIsa::ScopedIsa(Isa isa) : saved_(g_override.load()) {
  ZT_CHECK(isa <= best_isa(), "ScopedIsa({}) on a CPU with only {}", isa_name(isa), isa_name(best_isa()));
  g_override.store(static_cast<int>(isa));
}

ScopedIsa::~ScopedIsa() { g_override.store(saved_); }

}  // namespace zt::cpu
