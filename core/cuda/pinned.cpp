#include "core/cuda/pinned.h"

#include "core/cuda/check.h"
#include "core/error.h"

namespace zt::cuda {

void* alloc_pinned(size_t bytes) {
  void* p = nullptr;
  const cudaError_t err = cudaHostAlloc(&p, bytes, cudaHostAllocPortable);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    fail("cannot allocate {} bytes of pinned host memory: {} ({})", bytes, cudaGetErrorString(err), cudaGetErrorName(err));
  }
  return p;
}

void free_pinned(void* p) noexcept {
  if (p) (void)cudaFreeHost(p);
}

}  // namespace zt::cuda
