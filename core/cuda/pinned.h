// Page-locked (pinned) host memory, for staging buffers: copies between it and a device run
// asynchronously at full bus speed, where pageable memory is staged again by the driver.
// Plain C++, like runtime.h; exists only in a CUDA build.
#pragma once
#include <cstddef>

namespace zt::cuda {

// Throws zt::Error naming the size when the runtime refuses (no driver, out of memory).
void* alloc_pinned(size_t bytes);
void free_pinned(void* p) noexcept;

}  // namespace zt::cuda
