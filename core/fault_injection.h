// Test-only fault injection, driven by the environment so that end-to-end tests can
// preempt, kill or crash a real run at an exact point:
//
//   ZT_TEST_FAULT=KIND@STEP[@RANK]   e.g. sigterm@20, sigterm_twice@2, sigkill@15@1, crash_in_save@20
//
// fires on rank RANK (default: every rank) when training reaches STEP, and only in the
// first attempt of a `zt launch` group (ZT_RESTART_COUNT unset or 0), so a restarted group
// runs clean. Unset in normal runs, where every check is one integer comparison.
#pragma once
#include <cstdint>
#include <string_view>

namespace zt {

// True when ZT_TEST_FAULT names `kind` at `step` for `rank`.
bool fault_injected(std::string_view kind, int64_t step, int rank);

// ZT_TEST_POISON_EMPTY=1: Tensor::empty fills host memory with 0xFF bytes (NaN in every
// float dtype, -1 in integers), so that a test sees any read of memory nothing wrote, which
// the caching allocator would otherwise hand out holding whatever it held last.
bool poison_empty_tensors();

}  // namespace zt
