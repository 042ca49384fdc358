// parallel.backend: staged on CPU: every collective through the staging buffers at world
// sizes 2-3 under mpirun and zt launch (tests/mpi/comm_check.cpp checks the values in each
// rank), and in one process the in-place forms, buffer reuse and pass-through.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "parallel/comm_staged.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

using ::testing::HasSubstr;

TEST(CommStaged, EveryCollectiveThroughStagingBuffersUnderMpi) {
  for (int world : {2, 3}) {
    auto r = testing::run_command(testing::mpirun(world) + "'" ZT_COMM_CHECK "' staged");
    EXPECT_EQ(r.exit_code, 0) << "world " << world << ":\n" << r.output;
    for (int rank = 0; rank < world; ++rank)
      EXPECT_THAT(r.output, HasSubstr("comm check passed: rank " + std::to_string(rank) + " of " + std::to_string(world)));
  }
}

TEST(CommStaged, EveryCollectiveThroughStagingBuffersUnderZtLaunch) {
  const int world = 2;
  auto r = testing::run_command("'" ZT_BINARY "' launch --nproc-per-node 2 --master-port 29767 -- '" ZT_COMM_CHECK
                                "' staged");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (int rank = 0; rank < world; ++rank)
    EXPECT_THAT(r.output, HasSubstr("comm check passed: rank " + std::to_string(rank) + " of 2"));
}

Tensor iota(int64_t n, float start) {
  Tensor t = Tensor::empty({n}, DType::f32);
  for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = start + static_cast<float>(i);
  return t;
}

// World 1: every op is an identity, so the caller's tensors must hold exactly what the staged
// copies carried back, in place or not, op after op (blocks are reused).
TEST(CommStaged, OneProcessCopiesBackEveryResultInPlaceOrNot) {
  auto comm = make_staged_comm(make_single_process_comm(), {.stage_host_tensors = true});
  EXPECT_EQ(comm->backend(), "staged");
  for (int64_t n : {1, 1000, 70000}) {  // the last needs a block past the smallest
    Tensor a = iota(n, 1.f);
    comm->all_reduce(a, ReduceOp::avg)->wait();
    EXPECT_EQ(a.data<float>()[n - 1], static_cast<float>(n));
    Tensor out = Tensor::zeros({n}, DType::f32);
    comm->reduce_scatter(out, iota(n, 2.f))->wait();
    EXPECT_EQ(out.data<float>()[n - 1], static_cast<float>(n + 1));
    Tensor in_place = iota(n, 3.f);
    Tensor chunk = in_place.view(0, {n});
    comm->reduce_scatter(chunk, in_place)->wait();
    EXPECT_EQ(in_place.data<float>()[n - 1], static_cast<float>(n + 2));
    Tensor gathered = Tensor::zeros({n}, DType::f32);
    comm->all_gather(gathered, iota(n, 4.f))->wait();
    EXPECT_EQ(gathered.data<float>()[n - 1], static_cast<float>(n + 3));
    Tensor mine = gathered.view(0, {n});
    mine.copy_from(iota(n, 5.f));
    auto work = comm->all_gather(gathered, mine);
    while (!work->is_completed()) {
    }
    EXPECT_EQ(gathered.data<float>()[n - 1], static_cast<float>(n + 4));
    Tensor b = iota(n, 6.f);
    comm->broadcast(b, 0)->wait();
    EXPECT_EQ(b.data<float>()[0], 6.f);
  }
  EXPECT_EQ(comm->stats().calls[static_cast<int>(CommOp::all_gather)], 6);
}

TEST(CommStaged, HostTensorsPassStraightThrough) {
  auto comm = make_staged_comm(make_single_process_comm());
  Tensor t = iota(5, 1.f);
  comm->all_reduce(t)->wait();
  EXPECT_EQ(t.data<float>()[4], 5.f);
  EXPECT_EQ(comm->stats().calls[static_cast<int>(CommOp::all_reduce)], 1);  // the host backend's count
  comm->reset_stats();
  EXPECT_EQ(comm->stats().calls[static_cast<int>(CommOp::all_reduce)], 0);
}

}  // namespace
}  // namespace zt
