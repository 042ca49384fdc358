// Every test process, and every zt and mpirun it starts (they inherit the environment),
// hands out Tensor::empty memory filled with NaNs (ZT_TEST_POISON_EMPTY, core/fault_injection.h):
// code that reads memory nothing wrote fails its test instead of passing on whatever the
// caching allocator's block held before, often zeros. ZT_TEST_POISON_EMPTY=0 turns it off.
#include <cstdlib>

namespace {
const int poison_empty = setenv("ZT_TEST_POISON_EMPTY", "1", /*overwrite=*/0);
}  // namespace
