// runtime.device as `zt train` resolves it at preflight: cpu by default, cuda only for one
// rank on a machine with a visible GPU, each refusal naming the key and the reason.
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

std::string error_of(const Config& c, int world) {
  try {
    training_device(c, world);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TrainerDevice, CpuByDefaultAtAnyWorldSize) {
  EXPECT_EQ(training_device(Config{}, 1), Device::cpu());
  EXPECT_EQ(training_device(with_device(RuntimeDevice::cpu), 8), Device::cpu());
  EXPECT_EQ(describe_device(Device::cpu()), "cpu");
}

TEST(TrainerDevice, CudaWithSeveralRanksNamesTheKeyAndWhatItNeeds) {
  const std::string e = error_of(with_device(RuntimeDevice::cuda), 2);
  EXPECT_THAT(e, HasSubstr("runtime.device"));
  EXPECT_THAT(e, HasSubstr("2 ranks"));
  EXPECT_THAT(e, HasSubstr("parallel.backend"));
}

// Both outcomes are checked: which one runs depends on the machine.
TEST(TrainerDevice, CudaForOneRankNeedsAVisibleGpu) {
  const std::string why_not = testing::cuda_unavailable();
  const Config c = with_device(RuntimeDevice::cuda);
  if (why_not.empty()) {
    EXPECT_EQ(training_device(c, 1), Device::cuda(0));
    EXPECT_THAT(describe_device(Device::cuda(0)), HasSubstr("cuda:0 ("));
    return;
  }
  const std::string e = error_of(c, 1);
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
