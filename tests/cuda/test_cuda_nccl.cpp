// The NCCL communicator at world 1 on cuda:0: every collective in f32 and bf16 against the
// values a world of one must give, the result read back through the compute stream after
// wait() (so the event ordering between the streams is what makes it right). The error for a
// LOCAL_RANK past the visible GPUs is tested in tests/parallel/test_nccl_bootstrap.cpp.
#include <gmock/gmock.h>

#include <chrono>

#include "tests/cuda/cuda_test_util.h"
#ifdef ZT_WITH_NCCL
#include "parallel/comm_nccl.h"
#endif

namespace zt::testing {
namespace {

using namespace std::chrono_literals;

#ifdef ZT_WITH_NCCL
#define ZT_REQUIRE_NCCL() ZT_REQUIRE_CUDA()
#else
#define ZT_REQUIRE_NCCL() GTEST_SKIP() << "zerotrain was built without NCCL"
#endif

#ifdef ZT_WITH_NCCL
std::unique_ptr<Communicator> world_of_one() {
  RankInfo where;  // rank 0 of 1, LOCAL_RANK 0
  return make_nccl_comm(make_single_process_comm(), where, 60s);
}
#endif

class CudaNcclWorldOne : public ::testing::TestWithParam<DType> {};

TEST_P(CudaNcclWorldOne, EveryCollectiveGivesWhatOneRankHas) {
  ZT_REQUIRE_NCCL();
#ifdef ZT_WITH_NCCL
  const DType dtype = GetParam();
  const double tol = dtype == DType::f32 ? 0 : kBf16Tol;  // one rank: nothing is added, bf16 only rounds on input
  auto comm = world_of_one();
  EXPECT_EQ(comm->backend(), "nccl");
  EXPECT_EQ(comm->world_size(), 1);
  const int64_t n = 4099;  // not a multiple of anything NCCL chunks by
  const Tensor host = random_cpu({n}, 11, 1.f, dtype);
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::avg, ReduceOp::max}) {
    Tensor dev = to_gpu(host);
    comm->all_reduce(dev, op)->wait();
    expect_close(host, dev, tol, "all_reduce");
  }
  Tensor out = to_gpu(random_cpu({n}, 12, 1.f, dtype));
  comm->reduce_scatter(out, to_gpu(host))->wait();
  expect_close(host, out, tol, "reduce_scatter");
  Tensor gathered = to_gpu(random_cpu({n}, 13, 1.f, dtype));
  comm->all_gather(gathered, to_gpu(host))->wait();
  expect_close(host, gathered, tol, "all_gather");
  Tensor in_place = to_gpu(host);
  comm->all_gather(in_place, in_place.view(0, {n}))->wait();
  expect_close(host, in_place, tol, "all_gather in place");
  Tensor b = to_gpu(host);
  auto work = comm->broadcast(b, 0);
  work->wait();
  expect_close(host, b, tol, "broadcast");
  cuda::synchronize(Device::cuda(0));
  EXPECT_TRUE(work->is_completed());
  const CommStats s = comm->stats();
  EXPECT_EQ(s.calls[static_cast<int>(CommOp::all_reduce)], 3);
  EXPECT_EQ(s.calls[static_cast<int>(CommOp::all_gather)], 2);
  EXPECT_EQ(s.total_bytes(), 0);  // a world of one sends nothing
  // Host tensors go to the host communicator.
  Tensor scalar = Tensor::zeros({1}, DType::f32);
  scalar.data<float>()[0] = 2.5f;
  comm->all_reduce(scalar)->wait();
  EXPECT_EQ(scalar.data<float>()[0], 2.5f);
#endif
}

INSTANTIATE_TEST_SUITE_P(CudaNccl, CudaNcclWorldOne, ::testing::Values(DType::f32, DType::bf16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace zt::testing
