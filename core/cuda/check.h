// Inside core/cuda/ only: error checks on CUDA calls and the per-device compute stream.
#pragma once
#include <cuda_runtime.h>

#include <string>

namespace zt::cuda {

// Throws zt::Error naming the failing call, where it is, and cudaGetErrorString.
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);

#define ZT_CUDA_CHECK(call)                                                          \
  do {                                                                               \
    const cudaError_t zt_cuda_err_ = (call);                                         \
    if (zt_cuda_err_ != cudaSuccess)                                                 \
      ::zt::cuda::throw_cuda_error(zt_cuda_err_, #call, __FILE__, __LINE__);         \
  } while (0)

// After every kernel launch: a bad launch configuration is reported here, not later.
#define ZT_CUDA_CHECK_LAUNCH(kernel_name) ZT_CUDA_CHECK(cudaGetLastError() /* kernel_name */)

// The compute stream of the current device (set_device makes a device current). Created on
// first use, kept for the life of the process.
cudaStream_t compute_stream();
int current_device();
// Counts one host wait (see host_waits() in runtime.h); called next to each host-side sync.
void count_host_wait();

}  // namespace zt::cuda
