#include "launch/train_device.h"

#include <algorithm>

#include "core/error.h"
#include "launch/memory_plan.h"
#include "parallel/nccl_bootstrap.h"
#ifdef ZT_WITH_CUDA
#include "core/cuda/runtime.h"
#endif

namespace zt {

RankGpu rank_gpu(bool shared, int local_rank, int visible_gpus) {
  if (!shared) {
    const DeviceChoice c = device_for_local_rank(local_rank, visible_gpus);
    return {c.device, c.problem};
  }
  if (visible_gpus <= 0) return {Device::cpu(), "this node shows no GPU"};
  return {Device::cuda(local_rank % visible_gpus), ""};
}

bool ranks_share_gpus(const Config& cfg) {
#ifdef ZT_WITH_NCCL
  const bool have_nccl = true;
#else
  const bool have_nccl = false;
#endif
  return cfg.parallel.backend == CommBackend::staged || (cfg.parallel.backend == CommBackend::automatic && !have_nccl);
}

int visible_gpus() {
#ifdef ZT_WITH_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

void use_device(const Device& device) {
#ifdef ZT_WITH_CUDA
  if (!device.is_cpu()) cuda::set_device(device);
#else
  (void)device;
#endif
}

Device training_device(const Config& cfg, int local_rank) {
  if (cfg.runtime.device == RuntimeDevice::cpu) return Device::cpu();
#ifdef ZT_WITH_CUDA
  if (cuda::device_count() == 0)
    fail("runtime.device: cuda, but no GPU is visible: {}. Set runtime.device: cpu to train on the CPU",
         cuda::unavailable_reason());
  const RankGpu gpu = rank_gpu(ranks_share_gpus(cfg), local_rank, cuda::device_count());
  if (!gpu.problem.empty())
    fail("runtime.device: cuda with parallel.backend {}: {}; or set parallel.backend: staged to share GPUs between "
         "ranks", to_string(cfg.parallel.backend), gpu.problem);
  return gpu.device;
#else
  (void)local_rank;
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

DeviceMemory available_to_rank(const Config& cfg, const Device& device, int local_world) {
  if (device.is_cpu()) return {available_memory_bytes() / std::max(1, local_world), "to each rank on this node"};
#ifdef ZT_WITH_CUDA
  int sharing = 1;  // ranks r < local_world with r mod GPUs == this GPU
  if (ranks_share_gpus(cfg)) {
    const int gpus = std::max(1, cuda::device_count());
    sharing = std::max(1, (local_world - device.index + gpus - 1) / gpus);
  }
  return {static_cast<double>(cuda::free_memory(device)) / sharing,
          sharing > 1 ? fmt::format("to each of the {} ranks on {} (its free memory shared)", sharing, device.str())
                      : fmt::format("on {} (its free memory)", device.str())};
#else
  (void)cfg;
  (void)local_world;
  return {};
#endif
}

}  // namespace zt
