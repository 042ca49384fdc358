// NCCL's host-side bootstrap, on CPU: which GPU a rank takes, the check-in that stops every
// rank when one cannot start, the unique id handed from rank 0 to 2-4 ranks through MPI and
// through Gloo over the store (tests/mpi/nccl_bootstrap_check.cpp runs in each rank), and
// the arrival board that names ranks missing at ncclCommInitRank.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "parallel/nccl_bootstrap.h"
#include "parallel/store.h"
#include "tests/support/errors.h"
#include "tests/support/run_dir.h"
#ifdef ZT_WITH_NCCL
#include "core/cuda/runtime.h"
#include "parallel/comm_nccl.h"
#endif

namespace zt {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

std::string zt_launch(int nproc, int port) {
  return "'" ZT_BINARY "' launch --nproc-per-node " + std::to_string(nproc) + " --master-port " + std::to_string(port) +
         " -- ";
}

TEST(NcclBootstrap, LocalRankPicksItsGpuOrNamesBothNumbers) {
  const DeviceChoice ok = device_for_local_rank(1, 2);
  EXPECT_EQ(ok.device, Device::cuda(1));
  EXPECT_TRUE(ok.problem.empty()) << ok.problem;
  const DeviceChoice bad = device_for_local_rank(2, 2);
  EXPECT_THAT(bad.problem, HasSubstr("LOCAL_RANK 2 needs GPU cuda:2 but this node shows 2 GPU(s)"));
  EXPECT_THAT(device_for_local_rank(0, 0).problem, HasSubstr("shows 0 GPU(s)"));
}

TEST(NcclBootstrap, OneProcessChecksInAndGetsTheIdItMade) {
  auto host = make_single_process_comm();
  check_in(*host, "");
  EXPECT_THAT(testing::error_of([&] { check_in(*host, "cannot open cuda:0"); }),
              HasSubstr("1 of 1 rank(s) cannot start: rank 0: cannot open cuda:0"));
  NcclIdBytes made{};
  for (size_t i = 0; i < made.size(); ++i) made[i] = static_cast<char>(i * 7 + 3);
  EXPECT_EQ(share_unique_id(*host, [&] { return made; }), made);
}

TEST(NcclBootstrap, ArrivalBoardNamesTheRanksThatNeverArrived) {
  StoreServer server("127.0.0.1", 0);
  StoreClient client("127.0.0.1", server.port(), 5000ms);
  ArrivalBoard board(&client, "zt/0/nccl_init", 4);
  board.arrive(0);
  board.arrive(2);
  EXPECT_EQ(board.missing(), (std::vector<int>{1, 3}));
  EXPECT_THAT(board.describe_missing(), HasSubstr("rank(s) 1, 3 never reached it"));
  board.arrive(1);
  board.arrive(3);
  EXPECT_THAT(board.describe_missing(), HasSubstr("every rank reached it"));
  ArrivalBoard blind(nullptr, "x", 2);
  EXPECT_THAT(blind.describe_missing(), HasSubstr("mpirun"));
}

#ifdef ZT_WITH_NCCL
// Every rank's "rank r of W nccl id HEX" line: all W ranks, one id, not all zero bytes.
void expect_one_id_on_every_rank(const std::string& output, int world) {
  std::map<int, std::string> ids;
  const std::regex line("rank (\\d+) of (\\d+) nccl id ([0-9a-f]+)");
  for (std::sregex_iterator it(output.begin(), output.end(), line), end; it != end; ++it) {
    EXPECT_EQ(std::stoi((*it)[2]), world);
    ids[std::stoi((*it)[1])] = (*it)[3];
  }
  ASSERT_EQ(ids.size(), static_cast<size_t>(world)) << output;
  const std::string first = ids.begin()->second;
  EXPECT_EQ(first.size(), 2 * kNcclIdBytes);
  EXPECT_NE(first, std::string(2 * kNcclIdBytes, '0'));
  for (const auto& [rank, id] : ids) EXPECT_EQ(id, first) << "rank " << rank << " got another id";
}

TEST(NcclBootstrap, UniqueIdNeedsNoGpu) {
  const NcclIdBytes a = nccl_unique_id(), b = nccl_unique_id();
  EXPECT_NE(a, NcclIdBytes{});
  EXPECT_NE(a, b);  // each id names a fresh bootstrap endpoint
  EXPECT_THAT(nccl_version(), ::testing::MatchesRegex("2\\.[0-9]+\\.[0-9]+"));
}

// Runs with and without a GPU: LOCAL_RANK is set one past the GPUs this machine shows.
TEST(NcclBootstrap, CommunicatorRefusesLocalRankPastTheVisibleGpus) {
  RankInfo where;
  where.local_rank = cuda::device_count();
  where.local_world_size = where.local_rank + 1;
  const std::string err = testing::error_of([&] { make_nccl_comm(make_single_process_comm(), where, 60s); });
  EXPECT_THAT(err, HasSubstr("LOCAL_RANK " + std::to_string(where.local_rank) + " needs GPU cuda:" +
                             std::to_string(where.local_rank) + " but this node shows " +
                             std::to_string(cuda::device_count()) + " GPU(s)"));
}

TEST(NcclBootstrap, IdReachesEveryRankThroughMpi) {
  for (int world = 2; world <= 4; ++world) {
    auto r = testing::run_command(testing::mpirun(world) + "'" ZT_NCCL_BOOTSTRAP_CHECK "' id");
    ASSERT_EQ(r.exit_code, 0) << "world " << world << ":\n" << r.output;
    expect_one_id_on_every_rank(r.output, world);
  }
}

TEST(NcclBootstrap, IdReachesEveryRankThroughTheStore) {
  for (int world : {2, 4}) {
    auto r = testing::run_command(zt_launch(world, 29760 + world) + "'" ZT_NCCL_BOOTSTRAP_CHECK "' id");
    ASSERT_EQ(r.exit_code, 0) << "world " << world << ":\n" << r.output;
    expect_one_id_on_every_rank(r.output, world);
  }
}
#endif

TEST(NcclBootstrap, OneRankThatCannotStartStopsEveryRank) {
  for (bool mpi : {true, false}) {
    const int world = 3;
    auto r = testing::run_command((mpi ? testing::mpirun(world) : zt_launch(world, 29765)) +
                                  "'" ZT_NCCL_BOOTSTRAP_CHECK "' check-in");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    for (int rank = 0; rank < world; ++rank)
      EXPECT_THAT(r.output, HasSubstr("rank " + std::to_string(rank) + " of 3 stopped: NCCL: rank " +
                                      std::to_string(rank) +
                                      " stops because 1 of 3 rank(s) cannot start: rank 2: cannot open its GPU (test)"))
          << (mpi ? "mpirun" : "zt launch");
  }
}

}  // namespace
}  // namespace zt
