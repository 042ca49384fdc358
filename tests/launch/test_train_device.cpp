// runtime.device as `zt train` resolves it at preflight: cpu by default; cuda on a machine with
// a visible GPU, one GPU per rank (NCCL) or shared round-robin (staged); each refusal naming
// the key and the reason.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/config.h"
#include "core/error.h"
#include "launch/train_device.h"
#include "tests/cuda/cuda_test_util.h"

namespace zt {
namespace {

using ::testing::HasSubstr;

Config with_device(RuntimeDevice device) {
  Config c;
  c.runtime.device = device;
  return c;
}

std::string error_of(const Config& c, int local_rank) {
  try {
    training_device(c, local_rank);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TrainerDevice, CpuByDefaultForEveryRank) {
  EXPECT_EQ(training_device(Config{}, 0), Device::cpu());
  EXPECT_EQ(training_device(with_device(RuntimeDevice::cpu), 7), Device::cpu());
  EXPECT_EQ(describe_device(Device::cpu()), "cpu");
}

// NCCL: one GPU per rank, LOCAL_RANK's; the staged backend: ranks share the GPUs round-robin.
TEST(TrainerDevice, RanksTakeTheirOwnGpuOrShareThemRoundRobin) {
  EXPECT_EQ(rank_gpu(false, 0, 1).device, Device::cuda(0));
  EXPECT_EQ(rank_gpu(false, 3, 8).device, Device::cuda(3));
  const RankGpu past = rank_gpu(false, 1, 1);
  EXPECT_THAT(past.problem, HasSubstr("LOCAL_RANK 1 needs GPU cuda:1"));
  EXPECT_THAT(past.problem, HasSubstr("1 GPU(s)"));
  for (int r = 0; r < 4; ++r) {
    const RankGpu one = rank_gpu(true, r, 1), two = rank_gpu(true, r, 2);
    EXPECT_TRUE(one.problem.empty() && two.problem.empty());
    EXPECT_EQ(one.device, Device::cuda(0)) << "rank " << r;
    EXPECT_EQ(two.device, Device::cuda(r % 2)) << "rank " << r;
  }
  EXPECT_THAT(rank_gpu(true, 0, 0).problem, HasSubstr("no GPU"));

  Config c = with_device(RuntimeDevice::cuda);
  c.parallel.backend = CommBackend::staged;
  EXPECT_TRUE(ranks_share_gpus(c));
  c.parallel.backend = CommBackend::nccl;
  EXPECT_FALSE(ranks_share_gpus(c));
  c.parallel.backend = CommBackend::automatic;  // auto is NCCL where it is built, else staged
#ifdef ZT_WITH_NCCL
  EXPECT_FALSE(ranks_share_gpus(c));
#else
  EXPECT_TRUE(ranks_share_gpus(c));
#endif
}

// Both outcomes are checked: which one runs depends on the machine.
TEST(TrainerDevice, CudaForOneRankNeedsAVisibleGpu) {
  const std::string why_not = testing::cuda_unavailable();
  const Config c = with_device(RuntimeDevice::cuda);
  if (why_not.empty()) {
    EXPECT_EQ(training_device(c, 0), Device::cuda(0));
    EXPECT_THAT(describe_device(Device::cuda(0)), HasSubstr("cuda:0 ("));
    return;
  }
  const std::string e = error_of(c, 0);
  EXPECT_THAT(e, HasSubstr("runtime.device: cuda"));
#ifdef ZT_WITH_CUDA
  EXPECT_THAT(e, HasSubstr("no GPU is visible"));
  EXPECT_THAT(e, HasSubstr(why_not));  // the runtime's own reason
#else
  EXPECT_THAT(e, HasSubstr("built without CUDA"));
#endif
}

}  // namespace
}  // namespace zt
