// The vector instruction set the CPU kernels run: the best this CPU has (cpuid), or a lower
// one forced with ZT_CPU_ISA=avx2|generic so that one machine can exercise every path (an
// AVX-512 machine proves the AVX2 and portable kernels too).
#pragma once
#include <string>
#include <vector>

namespace zt::cpu {

// Ordered: each level includes the ones below it. avx512bf16 is avx512 with bf16 GEMMs on
// AVX512-BF16's vdpbf16ps (pairs of bf16 products) instead of widening to fp32 FMAs; amx is
// avx512bf16 with bf16 GEMMs on AMX tiles (Intel Sapphire Rapids and later).
enum class Isa { generic, avx2, avx512, avx512bf16, amx };

const char* isa_name(Isa isa);

// Whether this CPU and OS can run the level: amx needs AMX-TILE and AMX-BF16 on top of
// avx512bf16, and the kernel's leave to use the tile registers (asked for here, once);
// avx512bf16 needs AVX512-BF16 on top of avx512, which needs AVX-512 F, BW and VL; avx2 needs
// AVX2, FMA and F16C (half conversions); generic is plain C++.
bool cpu_supports(Isa isa);

// Whether this CPU's cores issue vector shuffles and logic on the ports that run its FMAs, so
// that each such instruction in a GEMM's inner loop takes an FMA's slot: Intel's (ports 0 and
// 5 for 512-bit work). AMD's Zen 4 and 5 have pipes for them beside the FMA pipes. It decides
// how the AVX-512 kernel widens a bf16 A (core/cpu/gemm.h, Bf16ARead).
bool shuffles_share_fma_ports();

// The level the kernels use by default: the highest this CPU supports, except avx512bf16
// only where vdpbf16ps is known to be the faster way (AMD Zen 4: twice the FMA's FLOPs; on
// Zen 5 and Intel Emerald Rapids it ran at half the FMA's). amx, where the CPU has it, is the
// default: its bf16 GEMMs ran at 1.4-7.6x oneDNN's fp32 sgemm (bench/bench_kernels).
Isa best_isa();

// The level the kernels use: best_isa(), or ZT_CPU_ISA's level (read once) if set. A value
// that is not a level, or one this CPU does not support, is an error naming the variable
// and the value.
Isa active_isa();

// best_isa() or ZT_CPU_ISA's level: the process's level, which active_isa() returns outside
// a ScopedIsa (and what oneDNN, whose level is fixed once per process, is capped to).
Isa process_isa();

// Every level this CPU supports, lowest first (it may go past best_isa()).
std::vector<Isa> supported_isas();

// "avx512", or "avx2 (forced; this CPU's default is avx512)": for the first log line.
std::string isa_description();

// Overrides active_isa() for this process while alive (tests run each kernel under every
// supported level). Not thread-safe against kernels running concurrently.
class ScopedIsa {
 public:
  explicit ScopedIsa(Isa isa);
  ~ScopedIsa();
  ScopedIsa(const ScopedIsa&) = delete;
  ScopedIsa& operator=(const ScopedIsa&) = delete;

 private:
  int saved_;
};

}  // namespace zt::cpu
