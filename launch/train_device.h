// The device `zt train` runs on (runtime.device), checked at preflight, before anything is
// written to disk.
#pragma once
#include <string>

#include "core/config.h"
#include "core/device.h"

namespace zt {

// The device runtime.device names for the rank with `local_rank` on its node. Throws
// zt::Error naming the key and the reason when it cannot train there: cuda in a build without
// CUDA, with no GPU visible, or with more ranks on the node than GPUs under NCCL.
Device training_device(const Config& cfg, int local_rank);

// The GPU of the rank with `local_rank` on a node that shows `visible_gpus`: its own,
// cuda:LOCAL_RANK, unless `shared` (the staged backend), where ranks take the GPUs round-robin
// (LOCAL_RANK mod GPUs), so that 2-4 ranks can train on one GPU (NCCL refuses two ranks on one
// device). `problem` says why there is none.
struct RankGpu {
  Device device;
  std::string problem;
};
RankGpu rank_gpu(bool shared, int local_rank, int visible_gpus);

// Whether runtime.device: cuda ranks share GPUs: parallel.backend staged, or auto in a build
// without NCCL (where auto means staged).
bool ranks_share_gpus(const Config& cfg);

// The GPUs this process sees: 0 in a build without CUDA.
int visible_gpus();

// Makes `device` current for this process's kernels and allocations (a GPU; nothing for cpu).
void use_device(const Device& device);

// For the startup line: "cpu", or "cuda:0 (NVIDIA H200, CUDA runtime 13.0)".
std::string describe_device(const Device& device);

// The memory a rank on `device` may plan for, and where it is for messages: the CPU's share
// of the node's MemAvailable among the node's `local_world` ranks, or its share of the GPU's
// free memory among the ranks on that GPU (more than one only where ranks share GPUs).
struct DeviceMemory {
  double bytes = 0;  // 0: unknown (nothing is checked)
  std::string where;
};
DeviceMemory available_to_rank(const Config& cfg, const Device& device, int local_world);

}  // namespace zt
