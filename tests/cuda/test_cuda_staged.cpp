// parallel.backend: staged with device tensors at world 1: every collective's operands go
// through pinned staging blocks and back to cuda:0, in place or not, with blocks reused
// across ops. (At several ranks on one GPU the same code runs over MPI or Gloo; the staging
// logic is checked at 2-3 ranks on CPU in tests/parallel/test_comm_staged.cpp.)
#include "parallel/comm_staged.h"
#include "tests/cuda/cuda_test_util.h"

namespace zt::testing {
namespace {

TEST(CudaStaged, WorldOneCarriesDeviceTensorsThroughPinnedBuffers) {
  ZT_REQUIRE_CUDA();
  auto comm = make_staged_comm(make_single_process_comm());
  for (int64_t n : {1, 4099, 300000}) {  // the last needs a block past the smallest
    for (DType dtype : {DType::f32, DType::bf16}) {
      const Tensor host = random_cpu({n}, static_cast<uint64_t>(n), 1.f, dtype);
      Tensor a = to_gpu(host);
      comm->all_reduce(a, ReduceOp::avg)->wait();
      expect_close(host, a, 0, "all_reduce");
      Tensor out = to_gpu(random_cpu({n}, 2, 1.f, dtype));
      comm->reduce_scatter(out, to_gpu(host))->wait();
      expect_close(host, out, 0, "reduce_scatter");
      const Tensor before = random_cpu({n}, 3, 1.f, dtype);
      Tensor gathered = to_gpu(before);
      comm->all_gather(gathered, gathered.view(0, {n}))->wait();  // in place: its own chunk
      expect_close(before, gathered, 0, "all_gather in place");
      Tensor from = to_gpu(host);
      comm->all_gather(gathered, from)->wait();
      expect_close(host, gathered, 0, "all_gather");
      Tensor b = to_gpu(host);
      comm->broadcast(b, 0)->wait();
      expect_close(host, b, 0, "broadcast");
    }
  }
  EXPECT_EQ(comm->stats().calls[static_cast<int>(CommOp::all_gather)], 12);
}

}  // namespace
}  // namespace zt::testing
