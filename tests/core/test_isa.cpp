// CPU ISA selection: cpuid levels, ZT_CPU_ISA (forcing any level the CPU has, refusing one it
// lacks or an unknown one before anything is written), ScopedIsa, and zt train naming the ISA
// first.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/cpu/isa.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(CpuIsa, LevelsAreOrderedAndIncludeTheBest) {
  const auto isas = cpu::supported_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), cpu::Isa::generic);
  EXPECT_TRUE(std::is_sorted(isas.begin(), isas.end()));
  EXPECT_NE(std::find(isas.begin(), isas.end(), cpu::best_isa()), isas.end());
  for (cpu::Isa isa : {cpu::Isa::generic, cpu::Isa::avx2, cpu::Isa::avx512, cpu::Isa::avx512bf16, cpu::Isa::amx})
    EXPECT_EQ(cpu::cpu_supports(isa), std::find(isas.begin(), isas.end(), isa) != isas.end()) << cpu::isa_name(isa);
  // The default skips avx512bf16 only where the CPU has it (it is not the faster way there).
  EXPECT_TRUE(cpu::best_isa() == isas.back() || isas.back() == cpu::Isa::avx512bf16);
  if (cpu::cpu_supports(cpu::Isa::amx)) {
    EXPECT_EQ(cpu::best_isa(), cpu::Isa::amx);
  }
  EXPECT_EQ(std::string(cpu::isa_name(cpu::Isa::amx)), "amx");
  EXPECT_EQ(std::string(cpu::isa_name(cpu::Isa::avx512bf16)), "avx512bf16");
  EXPECT_EQ(std::string(cpu::isa_name(cpu::Isa::avx512)), "avx512");
  EXPECT_EQ(std::string(cpu::isa_name(cpu::Isa::avx2)), "avx2");
  EXPECT_EQ(std::string(cpu::isa_name(cpu::Isa::generic)), "generic");
}

// Under ctest's isa-NAME labels the whole process runs the forced level: this proves the
// variable reached the kernels the other tests of that label run.
// The kernel's view of the vendor against the kernel's own (/proc/cpuinfo's vendor_id).
TEST(CpuIsa, ShufflesShareFmaPortsExactlyOnIntel) {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, vendor;
  while (vendor.empty() && std::getline(cpuinfo, line))
    if (line.rfind("vendor_id", 0) == 0) vendor = line.substr(line.find(':') + 2);
  if (vendor.empty()) GTEST_SKIP() << "no vendor_id in /proc/cpuinfo";
  EXPECT_EQ(cpu::shuffles_share_fma_ports(), vendor == "GenuineIntel") << vendor;
}

TEST(CpuIsa, TheEnvironmentPicksTheActiveLevel) {
  const char* env = std::getenv("ZT_CPU_ISA");
  const std::string want = env && *env ? env : cpu::isa_name(cpu::best_isa());
  EXPECT_EQ(cpu::isa_name(cpu::active_isa()), want);
}

TEST(CpuIsa, ScopedIsaForcesAndRestores) {
  const cpu::Isa before = cpu::active_isa();
  for (cpu::Isa isa : cpu::supported_isas()) {
    const cpu::ScopedIsa forced(isa);
    EXPECT_EQ(cpu::active_isa(), isa);
  }
  EXPECT_EQ(cpu::active_isa(), before);
}

TEST(CpuIsa, ZtTrainNamesTheIsaFirstAndRefusesBadValuesBeforeWriting) {
  testing::TempDir tmp;
  const std::string args = "train configs/test-tiny-gpt2.yaml --set train.steps=1 --set run.out_dir=" + tmp.str();
  auto r = testing::run_command("ZT_CPU_ISA=generic OMP_NUM_THREADS=1 '" ZT_BINARY "' " + args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, StartsWith("zt train: "));
  const std::string first_line = r.output.substr(0, r.output.find('\n'));
  if (cpu::best_isa() == cpu::Isa::generic)
    EXPECT_THAT(first_line, HasSubstr("CPU kernels generic"));
  else
    EXPECT_THAT(first_line, HasSubstr("CPU kernels generic (forced; this CPU's default is " +
                                      std::string(cpu::isa_name(cpu::best_isa())) + ")"));

  const std::filesystem::path fresh = tmp.path() / "fresh";
  const std::string fresh_args = "train configs/test-tiny-gpt2.yaml --set train.steps=1 --set run.out_dir=" + fresh.string();
  r = testing::run_command("ZT_CPU_ISA=sse9 OMP_NUM_THREADS=1 '" ZT_BINARY "' " + fresh_args);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("ZT_CPU_ISA=sse9: must be one of amx, avx512bf16, avx512, avx2, generic"));
  EXPECT_FALSE(std::filesystem::exists(fresh));
  // The lowest level this CPU lacks (none on a CPU with AMX).
  for (cpu::Isa isa : {cpu::Isa::avx2, cpu::Isa::avx512, cpu::Isa::avx512bf16, cpu::Isa::amx}) {
    if (cpu::cpu_supports(isa)) continue;
    const std::string name = cpu::isa_name(isa);
    r = testing::run_command("ZT_CPU_ISA=" + name + " OMP_NUM_THREADS=1 '" ZT_BINARY "' " + fresh_args);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_THAT(r.output, HasSubstr("ZT_CPU_ISA=" + name + ": this CPU supports only up to"));
    EXPECT_FALSE(std::filesystem::exists(fresh));
    break;
  }
}

}  // namespace
}  // namespace zt
