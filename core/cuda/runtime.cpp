// CUDA runtime glue: device discovery that never throws, the per-device compute stream, and
// copies between host and device ordered on that stream.
#include "core/cuda/runtime.h"

#include <array>
#include <atomic>
#include <mutex>

#include "core/cuda/check.h"
#include "core/error.h"

namespace zt::cuda {

namespace {
constexpr int kMaxDevices = 64;

struct Discovery {
  int count = 0;
  std::string reason;
};

const Discovery& discovery() {
  static const Discovery d = [] {
    Discovery r;
    const cudaError_t err = cudaGetDeviceCount(&r.count);
    if (err != cudaSuccess) {
      r.count = 0;
      r.reason = fmt::format("{} ({})", cudaGetErrorString(err), cudaGetErrorName(err));
      (void)cudaGetLastError();  // clear the sticky-free error so later calls start clean
    } else if (r.count == 0) {
      r.reason = "the CUDA runtime reports 0 devices";
    }
    return r;
  }();
  return d;
}

std::array<cudaStream_t, kMaxDevices> g_streams{};
std::atomic<int64_t> g_host_waits{0};
std::mutex g_streams_mu;
}  // namespace

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  (void)cudaGetLastError();
  fail("CUDA error at {}:{}: {} failed: {} ({})", file, line, call, cudaGetErrorString(err), cudaGetErrorName(err));
}

int device_count() { return discovery().count; }
std::string unavailable_reason() { return discovery().reason; }

std::string runtime_version() {
  int v = 0;
  if (cudaRuntimeGetVersion(&v) != cudaSuccess) return "unknown";
  return fmt::format("{}.{}", v / 1000, (v % 1000) / 10);
}

std::string device_name(int device) {
  set_device(Device::cuda(device));
  cudaDeviceProp prop{};
  ZT_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return prop.name;
}

size_t free_memory(const Device& device) {
  set_device(device);
  size_t free = 0, total = 0;
  ZT_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return free;
}

void count_host_wait() { g_host_waits.fetch_add(1, std::memory_order_relaxed); }
int64_t host_waits() { return g_host_waits.load(std::memory_order_relaxed); }

void set_device(const Device& device) {
  if (device.kind != DeviceKind::cuda || device.index < 0 || device.index >= device_count())
    fail("{} is not a CUDA device of this machine ({} found{}{})", device.str(), device_count(),
         unavailable_reason().empty() ? "" : ": ", unavailable_reason());
  ZT_CUDA_CHECK(cudaSetDevice(device.index));
}

int current_device() {
  int d = 0;
  ZT_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

cudaStream_t compute_stream() {
  const int d = current_device();
  ZT_CHECK(d < kMaxDevices, "device {} past the {} supported", d, kMaxDevices);
  std::lock_guard<std::mutex> lock(g_streams_mu);
  if (!g_streams[d]) ZT_CUDA_CHECK(cudaStreamCreateWithFlags(&g_streams[d], cudaStreamNonBlocking));
  return g_streams[d];
}

void copy_bytes(void* dst, const Device& dst_device, const void* src, const Device& src_device, size_t bytes) {
  const Device& on = dst_device.is_cpu() ? src_device : dst_device;
  set_device(on);
  cudaStream_t stream = compute_stream();
  // cudaMemcpyDefault: unified addressing tells the runtime which side each pointer is on.
  ZT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream));
  // A copy to the host must be complete when we return; from pageable host memory the
  // runtime has staged the source before cudaMemcpyAsync returns.
  if (dst_device.is_cpu()) {
    count_host_wait();
    ZT_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
}

void zero_bytes(void* dst, const Device& device, size_t bytes) {
  set_device(device);
  ZT_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, compute_stream()));
}

void synchronize(const Device& device) {
  set_device(device);
  count_host_wait();
  ZT_CUDA_CHECK(cudaStreamSynchronize(compute_stream()));
}

}  // namespace zt::cuda
