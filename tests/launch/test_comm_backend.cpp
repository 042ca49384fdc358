// parallel.backend's GPU choices (nccl, staged): the config accepts them where the build can
// honour them, the trainer's factory refuses nccl on a CPU run naming the key, and a refused
// run writes nothing. Every ZeRO stage under staged is checked against one process in
// tests/parallel/test_zero_equivalence.cpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "core/config.h"
#include "launch/trainer.h"
#include "tests/support/errors.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

using ::testing::HasSubstr;

const char* kMinimal = "data:\n  train: corpus.txt\n";

TEST(CommBackendConfig, StagedParsesAndNcclOnlyInABuildWithNccl) {
  EXPECT_EQ(parse_config(kMinimal, "cfg.yaml", {"parallel.backend=staged"}).parallel.backend, CommBackend::staged);
  EXPECT_EQ(to_string(CommBackend::nccl), "nccl");
#ifdef ZT_WITH_NCCL
  EXPECT_EQ(parse_config(kMinimal, "cfg.yaml", {"parallel.backend=nccl"}).parallel.backend, CommBackend::nccl);
#else
  EXPECT_THAT(testing::error_of([] { parse_config(kMinimal, "cfg.yaml", {"parallel.backend=nccl"}); }),
              HasSubstr("parallel.backend: nccl needs a zt built with the CUDA backend and NCCL"));
#endif
  EXPECT_THAT(testing::error_of([] { parse_config(kMinimal, "cfg.yaml", {"parallel.backend=ncl"}); }),
              HasSubstr("parallel.backend"));
}

TEST(CommBackendConfig, NcclOnACpuRunNamesTheKeyAndTheDevice) {
  const RankInfo one_process;
  EXPECT_THAT(testing::error_of([&] { make_communicator(CommBackend::nccl, one_process, 5); }),
              HasSubstr("parallel.backend is nccl, which reduces GPU tensors, but this run computes on cpu"));
}

TEST(CommBackendConfig, StagedAndAutoInOneProcess) {
  const RankInfo one_process;
  EXPECT_EQ(make_communicator(CommBackend::staged, one_process, 5)->backend(), "staged");
  EXPECT_EQ(make_communicator(CommBackend::automatic, one_process, 5)->backend(), "single");
  // A GPU run of one process needs no collective library at all.
  EXPECT_EQ(make_communicator(CommBackend::automatic, one_process, 5, Device::cuda(0))->backend(), "single");
}

TEST(CommBackendConfig, RefusedNcclRunWritesNothing) {
  testing::TempDir tmp;
  auto r = testing::run_zt("train configs/test-tiny-gpt2.yaml --set run.out_dir=" + tmp.str() +
                           " --set run.name=refused --set train.steps=1 --set parallel.backend=nccl");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("parallel.backend"));
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "refused")) << r.output;
}

}  // namespace
}  // namespace zt
