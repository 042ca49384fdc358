// The vector instruction set the CPU kernels run: the best this CPU has (cpuid), or a lower
// one forced with ZT_CPU_ISA=avx2|generic so that one machine can exercise every path (an
// AVX-512 machine proves the AVX2 and portable kernels too).
#pragma once
#include <string>
#include <vector>

namespace zt::cpu {

// Ordered: each level includes the ones below it.
enum class Isa { generic, avx2, avx512 };

const char* isa_name(Isa isa);

// The best level this CPU and OS support: avx512 needs AVX-512 F, BW and VL; avx2 needs
// AVX2 and FMA; generic is plain C++ that runs anywhere.
Isa best_isa();

// The level the kernels use: best_isa(), lowered by ZT_CPU_ISA (read once). A value that is
// not a level, or one above best_isa(), is an error naming the variable and the value.
Isa active_isa();

// best_isa() lowered by ZT_CPU_ISA: the process's level, which active_isa() returns outside
// a ScopedIsa (and what oneDNN, whose level is fixed once per process, is capped to).
Isa process_isa();

// Every level this CPU supports, lowest first.
std::vector<Isa> supported_isas();

// "avx512", or "avx2 (forced; this CPU has avx512)": for the first log line.
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
