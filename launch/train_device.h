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

}  // namespace zt
