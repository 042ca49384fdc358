// Collectives of the MPI backend at world sizes 1-4 (tests/mpi/comm_check.cpp does the
// checking inside each rank), and the single-process communicator.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/cpu/ops.h"
#include "core/dtype.h"
#include "parallel/comm.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

TEST(CommMpi, EveryCollectiveAtWorldSizesOneToFour) {
  for (int world = 1; world <= 4; ++world) {
    auto r = testing::run_command(testing::mpirun(world) + "'" ZT_COMM_CHECK "'");
    EXPECT_EQ(r.exit_code, 0) << "world " << world << ":\n" << r.output;
    for (int rank = 0; rank < world; ++rank)
      EXPECT_THAT(r.output, ::testing::HasSubstr("rank " + std::to_string(rank) + " of " + std::to_string(world)));
  }
}

// The reduce function both backends use for bf16: the f32 sum rounded to nearest even, the
// same as f32_to_bf16 of it, for ties, overflow to inf and NaN; in place.
TEST(CommBf16, SumRoundsLikeConversionOfTheF32Sum) {
  std::vector<float> a = {1.f, 1.f, 3.f, 256.f, -2.5f, 3e38f, 0.f, std::nanf("")};
  std::vector<float> b = {0x1p-8f, 0x1p-7f + 0x1p-8f, -3.f, 1.f, 1.25f, 3e38f, -0.f, 1.f};
  std::vector<uint16_t> ah, bh;
  for (size_t i = 0; i < a.size(); ++i) ah.push_back(f32_to_bf16(a[i])), bh.push_back(f32_to_bf16(b[i]));
  std::vector<uint16_t> sum = ah;
  cpu::sum_bf16(sum.data(), sum.data(), bh.data(), static_cast<int64_t>(sum.size()));
  for (size_t i = 0; i < a.size(); ++i) {
    const uint16_t want = f32_to_bf16(bf16_to_f32(ah[i]) + bf16_to_f32(bh[i]));
    EXPECT_EQ(sum[i], want) << "element " << i;
  }
  EXPECT_EQ(bf16_to_f32(sum[0]), 1.f);           // 1 + 2^-8 is a tie: rounds to even (1)
  EXPECT_EQ(bf16_to_f32(sum[1]), 1.f + 0x1p-6f);  // 1 + 3 * 2^-8 is a tie: rounds up to even
  EXPECT_EQ(bf16_to_f32(sum[3]), 256.f);         // 257 needs 9 bits: a tie, to even
  EXPECT_TRUE(std::isinf(bf16_to_f32(sum[5])));
  EXPECT_TRUE(std::isnan(bf16_to_f32(sum[7])));
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
