// The device `zt train` runs on (runtime.device), checked at preflight, before anything is
// written to disk.
#pragma once
#include <string>

#include "core/config.h"
#include "core/device.h"

namespace zt {

// The device runtime.device names for a run of `world` ranks. Throws zt::Error naming the key
// and the reason when it cannot train there: cuda in a build without CUDA, with no GPU
// visible, or with more than one rank (collectives on device memory are not there yet).
Device training_device(const Config& cfg, int world);

// For the startup line: "cpu", or "cuda:0 (NVIDIA H200, CUDA runtime 13.0)".
std::string describe_device(const Device& device);

// The memory a rank on `device` may plan for, and where it is for messages: the CPU's share
// of the node's MemAvailable among `local_world` ranks, or the GPU's free memory.
struct DeviceMemory {
  double bytes = 0;  // 0: unknown (nothing is checked)
  std::string where;
};
DeviceMemory available_to_rank(const Device& device, int local_world);

}  // namespace zt
