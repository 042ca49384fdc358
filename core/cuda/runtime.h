// The CUDA runtime as the rest of zerotrain sees it: plain C++ (no CUDA headers), so host code
// compiled by g++ can ask for devices, copy bytes and order work. Every function here exists
// only in a CUDA build (ZT_WITH_CUDA); callers outside core/cuda/ guard on it.
//
// Work on a device goes to one compute stream per device, in order; the only host waits are
// the ones named here (copies to the host, synchronize).
#pragma once
#include <cstddef>
#include <string>

#include "core/device.h"

namespace zt::cuda {

// Number of CUDA devices; 0 (never an exception) when there is no GPU or no driver.
int device_count();
// Why device_count() is 0, from the runtime ("no CUDA-capable device is detected"); empty
// when there are devices.
std::string unavailable_reason();
// "13.0": the CUDA runtime zerotrain was linked with.
std::string runtime_version();

// "NVIDIA H200": the product name of CUDA device `device` (which must exist).
std::string device_name(int device);

// Free bytes of CUDA device `device` (cudaMemGetInfo), as the driver sees them now.
size_t free_memory(const Device& device);

// Throws zt::Error unless `device` is a CUDA device that exists; makes it current.
void set_device(const Device& device);

// Copies bytes between any two of host and device memory, in order on the compute stream of
// the device involved (dst's when both are devices). A copy to the host returns when the data
// is there; host to device returns once the source may be reused (pageable memory).
void copy_bytes(void* dst, const Device& dst_device, const void* src, const Device& src_device, size_t bytes);
// Zeroes device bytes asynchronously on the device's compute stream.
void zero_bytes(void* dst, const Device& device, size_t bytes);
// Waits until the device's compute stream is idle.
void synchronize(const Device& device);

// Times the host has waited for a device since the process started: copies to the host,
// synchronize(), and kernels that return a host value. A training step should add one (its
// loss); tests read the difference around a step.
int64_t host_waits();

}  // namespace zt::cuda
