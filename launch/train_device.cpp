#include "launch/train_device.h"

#include <algorithm>

#include "core/error.h"
#include "launch/memory_plan.h"
#ifdef ZT_WITH_CUDA
#include "core/cuda/runtime.h"
#endif

namespace zt {

Device training_device(const Config& cfg, int world) {
  if (cfg.runtime.device == RuntimeDevice::cpu) return Device::cpu();
  if (world > 1)
    fail("runtime.device: cuda trains one rank on one GPU, but this run has {} ranks: the engine does not run "
         "its collectives on device memory yet (the nccl and staged communicators of parallel.backend are not "
         "wired into training). Run one rank, or set runtime.device: cpu",
         world);
#ifdef ZT_WITH_CUDA
  if (cuda::device_count() == 0)
    fail("runtime.device: cuda, but no GPU is visible: {}. Set runtime.device: cpu to train on the CPU",
         cuda::unavailable_reason());
  return Device::cuda(0);
#else
  fail("runtime.device: cuda, but this zt was built without CUDA (configure with -DZT_CUDA=ON where nvcc is "
       "installed). Set runtime.device: cpu to train on the CPU");
#endif
}

std::string describe_device(const Device& device) {
  if (device.is_cpu()) return device.str();
#ifdef ZT_WITH_CUDA
  return fmt::format("{} ({}, CUDA runtime {})", device.str(), cuda::device_name(device.index),
                     cuda::runtime_version());
#else
  return device.str();
#endif
}

DeviceMemory available_to_rank(const Device& device, int local_world) {
  if (device.is_cpu()) return {available_memory_bytes() / std::max(1, local_world), "to each rank on this node"};
#ifdef ZT_WITH_CUDA
  return {static_cast<double>(cuda::free_memory(device)), fmt::format("on {} (its free memory)", device.str())};
#else
  return {};
#endif
}

}  // namespace zt
