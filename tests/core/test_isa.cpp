// CPU ISA selection: cpuid levels, ZT_CPU_ISA (forcing a lower level, refusing a higher or an
// unknown one before anything is written), ScopedIsa, and zt train naming the ISA first.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "core/cpu/isa.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(CpuIsa, LevelsAreOrderedAndEndAtTheBest) {
  const auto isas = cpu::supported_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), cpu::Isa::generic);
  EXPECT_EQ(isas.back(), cpu::best_isa());
  EXPECT_EQ(std::string(cpu::isa_name(cpu::Isa::avx512)), "avx512");
  EXPECT_EQ(std::string(cpu::isa_name(cpu::Isa::avx2)), "avx2");
  EXPECT_EQ(std::string(cpu::isa_name(cpu::Isa::generic)), "generic");
}

// Under ctest's isa-NAME labels the whole process runs the forced level: this proves the
// variable reached the kernels the other tests of that label run.
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
    EXPECT_THAT(first_line, HasSubstr("CPU kernels generic (forced; this CPU has " +
                                      std::string(cpu::isa_name(cpu::best_isa())) + ")"));

  const std::filesystem::path fresh = tmp.path() / "fresh";
  const std::string fresh_args = "train configs/test-tiny-gpt2.yaml --set train.steps=1 --set run.out_dir=" + fresh.string();
  r = testing::run_command("ZT_CPU_ISA=sse9 OMP_NUM_THREADS=1 '" ZT_BINARY "' " + fresh_args);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("ZT_CPU_ISA=sse9: must be one of avx512, avx2, generic"));
  EXPECT_FALSE(std::filesystem::exists(fresh));
  if (cpu::best_isa() != cpu::Isa::avx512) {
    r = testing::run_command("ZT_CPU_ISA=avx512 OMP_NUM_THREADS=1 '" ZT_BINARY "' " + fresh_args);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_THAT(r.output, HasSubstr("ZT_CPU_ISA=avx512: this CPU supports only"));
    EXPECT_FALSE(std::filesystem::exists(fresh));
  }
}

}  // namespace
}  // namespace zt
