#include "core/cpu/isa.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "core/error.h"

namespace zt::cpu {
namespace {

constexpr Isa kLevels[] = {Isa::generic, Isa::avx2, Isa::avx512, Isa::avx512bf16, Isa::amx};

// The highest level this CPU supports.
Isa highest_supported() {
  Isa best = Isa::generic;
  for (Isa isa : kLevels)
    if (cpu_supports(isa)) best = isa;
  return best;
}

// The vendor string of cpuid leaf 0 ("AuthenticAMD", "GenuineIntel"), empty if none.
std::string vendor() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return {};
  char name[13] = {};
  std::memcpy(name, &ebx, 4);
  std::memcpy(name + 4, &edx, 4);
  std::memcpy(name + 8, &ecx, 4);
  return name;
}

// AMD family 19h (Zen 3 and Zen 4; Zen 3 has no AVX-512), from cpuid leaves 0 and 1.
bool amd_family_19h() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (vendor() != "AuthenticAMD" || !__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  const unsigned family = ((eax >> 8) & 0xF) + ((eax >> 8 & 0xF) == 0xF ? (eax >> 20) & 0xFF : 0);
  return family == 0x19;
}

// F16C (cpuid leaf 1, ecx bit 29): every CPU with AVX2 has it; Clang 14's
// __builtin_cpu_supports does not know the name.
bool has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29));
}

// AMX-TILE and AMX-BF16 (cpuid leaf 7), tile state enabled by the OS (XCR0 bits 17 and 18),
// and this process's leave to use it: Linux hands out the 8 KiB tile state only on request
// (arch_prctl ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA), and a process without it dies of
// SIGILL at its first tile instruction. Asked once; oneDNN asks the same.
bool amx_usable() {
  static const bool usable = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    const bool amx_bf16 = edx & (1u << 22), amx_tile = edx & (1u << 24);
    if (!amx_bf16 || !amx_tile || !__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 27))) return false;
    unsigned xcr0_lo = 0, xcr0_hi = 0;  // xgetbv(0); OSXSAVE (cpuid 1 ecx bit 27) makes it legal
    asm volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    constexpr unsigned kTileState = (1u << 17) | (1u << 18);
    if ((xcr0_lo & kTileState) != kTileState) return false;
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return usable;
}

// ZT_CPU_ISA, validated against the CPU; the best level when unset or empty.
Isa from_environment() {
  const char* env = std::getenv("ZT_CPU_ISA");
  if (!env || !*env) return best_isa();
  const std::string_view want(env);
  for (Isa isa : kLevels) {
    if (want != isa_name(isa)) continue;
    if (!cpu_supports(isa)) fail("ZT_CPU_ISA={}: this CPU supports only up to {}", want, isa_name(highest_supported()));
    return isa;
  }
  std::string names;  // highest first
  for (Isa isa : kLevels) names = std::string(isa_name(isa)) + (names.empty() ? "" : ", ") + names;
  fail("ZT_CPU_ISA={}: must be one of {}", want, names);
}

std::atomic<int> g_override{-1};  // a ScopedIsa's level, or -1

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::generic: return "generic";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::avx512bf16: return "avx512bf16";
    case Isa::amx: return "amx";
  }
  return "?";
}

bool cpu_supports(Isa isa) {
  // __builtin_cpu_supports also checks that the OS saves the wider registers (XCR0).
  switch (isa) {
    case Isa::generic: return true;
    case Isa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    case Isa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl");
    case Isa::avx512bf16: return cpu_supports(Isa::avx512) && __builtin_cpu_supports("avx512bf16");
    case Isa::amx: return cpu_supports(Isa::avx512bf16) && amx_usable();
  }
  return false;
}

bool shuffles_share_fma_ports() {
  static const bool intel = vendor() == "GenuineIntel";
  return intel;
}

Isa best_isa() {
  static const Isa isa = [] {
    const Isa highest = highest_supported();
    // vdpbf16ps retires one zmm per cycle on Zen 4, as the FMA does there: twice the FLOPs
    // (bench/bench_bf16_dot). Elsewhere it is not known to be faster (Zen 5 and Intel Emerald
    // Rapids: half the FMA's).
    if (highest == Isa::avx512bf16 && !amd_family_19h()) return Isa::avx512;
    return highest;
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
    if (cpu_supports(isa)) out.push_back(isa);
  return out;
}

std::string isa_description() {
  const Isa isa = active_isa();
  if (isa == best_isa()) return isa_name(isa);
  return std::string(isa_name(isa)) + " (forced; this CPU's default is " + isa_name(best_isa()) + ")";
}

ScopedIsa::ScopedIsa(Isa isa) : saved_(g_override.load()) {
  ZT_CHECK(cpu_supports(isa), "ScopedIsa({}) on a CPU without it", isa_name(isa));
  g_override.store(static_cast<int>(isa));
}

ScopedIsa::~ScopedIsa() { g_override.store(saved_); }

}  // namespace zt::cpu
