// Collectives of the MPI backend at world sizes 1-4 (tests/mpi/comm_check.cpp does the
// checking inside each rank), and the single-process communicator.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "parallel/comm.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

TEST(CommMpi, EveryCollectiveAtWorldSizesOneToFour) {
  for (int world = 1; world <= 4; ++world) {
    auto r = testing::run_command(
        "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe --bind-to none -np " +
        std::to_string(world) + " '" ZT_COMM_CHECK "'");
    EXPECT_EQ(r.exit_code, 0) << "world " << world << ":\n" << r.output;
    for (int rank = 0; rank < world; ++rank)
      EXPECT_THAT(r.output, ::testing::HasSubstr("rank " + std::to_string(rank) + " of " + std::to_string(world)));
  }
}

TEST(CommSingle, CollectivesAreIdentitiesAndCountCalls) {
  auto comm = make_single_process_comm();
  Tensor t = Tensor::zeros({5}, DType::f32);
  t.data<float>()[2] = 3.f;
  comm->all_reduce(t)->wait();
  EXPECT_EQ(t.data<float>()[2], 3.f);
  Tensor out = Tensor::zeros({5}, DType::f32);
  comm->all_gather(out, t)->wait();
  EXPECT_EQ(out.data<float>()[2], 3.f);
  EXPECT_EQ(comm->stats().calls[static_cast<int>(CommOp::all_reduce)], 1);
  EXPECT_EQ(comm->stats().total_bytes(), 0);
  EXPECT_EQ(ring_bytes_sent(CommOp::all_reduce, 400, 4), 600);
  EXPECT_EQ(ring_bytes_sent(CommOp::reduce_scatter, 400, 4), 300);
}

}  // namespace
}  // namespace zt
