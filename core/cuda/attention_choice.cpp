// Which attention kernels bf16 takes (attention_mma.h), read from ZT_CUDA_ATTENTION on every
// call so that a test or benchmark can switch between them in one process.
#include <cstdlib>
#include <string_view>

#include "core/cuda/attention_mma.h"
#include "core/error.h"

namespace zt::cuda {

bool tensor_core_attention_chosen() {
  const char* choice = std::getenv("ZT_CUDA_ATTENTION");
  const std::string_view kernels = choice ? choice : "tensor_cores";
  if (kernels == "plain") return false;
  ZT_CHECK(kernels == "tensor_cores", "ZT_CUDA_ATTENTION={} is not one of tensor_cores (the default), plain", kernels);
  return true;
}

}  // namespace zt::cuda
