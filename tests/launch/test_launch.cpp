// `zt launch`: worker environment and output prefixes, failure handling, restarts, signal
// forwarding, and the Gloo backend's collectives through it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/run_dir.h"

namespace zt {
namespace {

using ::testing::HasSubstr;
using testing::run_command;
using testing::TempDir;

std::string zt_launch(int nproc, int port, const std::string& rest) {
  return "'" ZT_BINARY "' launch --nproc-per-node " + std::to_string(nproc) + " --master-port " + std::to_string(port) +
         " " + rest;
}

TEST(Launch, WorkersGetTorchrunVariablesAndRankPrefixes) {
  auto r = run_command(zt_launch(3, 29721, "-- sh -c 'echo rank=$RANK world=$WORLD_SIZE local=$LOCAL_RANK/$LOCAL_WORLD_SIZE at=$MASTER_ADDR:$MASTER_PORT'"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (int rank = 0; rank < 3; ++rank)
    EXPECT_THAT(r.output, HasSubstr("[rank " + std::to_string(rank) + "] rank=" + std::to_string(rank) + " world=3 local=" +
                                    std::to_string(rank) + "/3 at=127.0.0.1:29721"));
}

TEST(Launch, AFailingWorkerBringsTheGroupDownWithItsExitCode) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_command(zt_launch(3, 29722, "-- sh -c 'if [ $RANK = 1 ]; then exit 3; fi; sleep 60'"));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_THAT(r.output, HasSubstr("rank 1 exited with code 3; stopping the group"));
  EXPECT_LT(s, 30) << "the sleeping workers were not stopped";
}

TEST(Launch, RestartsTheGroupWhileRestartsRemain) {
  auto r = run_command(zt_launch(2, 29723, "--max-restarts 1 -- sh -c 'if [ $ZT_RESTART_COUNT = 0 ] && [ $RANK = 1 ]; then exit 4; fi; echo attempt=$ZT_RESTART_COUNT'"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("restarting the group (restart 1 of 1)"));
  EXPECT_THAT(r.output, HasSubstr("[rank 1] attempt=1"));
  r = run_command(zt_launch(2, 29723, "--max-restarts 1 -- sh -c 'exit 5'"));
  EXPECT_EQ(r.exit_code, 5) << r.output;
  EXPECT_THAT(r.output, HasSubstr("no restarts left"));
}

TEST(Launch, SigtermReachesEveryWorker) {
  TempDir tmp;
  const std::string worker = "sh -c 'trap \"touch " + tmp.str() + "/term-$RANK; exit 0\" TERM; touch " + tmp.str() +
                             "/ready-$RANK; while true; do sleep 0.05; done'";
  auto r = run_command("{ " + zt_launch(2, 29724, "-- " + worker) + " & pid=$!; for i in $(seq 100); do [ -e " + tmp.str() +
                       "/ready-0 ] && [ -e " + tmp.str() + "/ready-1 ] && break; sleep 0.1; done; kill -TERM $pid; wait $pid; echo launcher=$?; }");
  EXPECT_THAT(r.output, HasSubstr("forwarding it to the workers"));
  EXPECT_TRUE(std::filesystem::exists(tmp.path() / "term-0")) << r.output;
  EXPECT_TRUE(std::filesystem::exists(tmp.path() / "term-1")) << r.output;
}

TEST(CommGloo, EveryCollectiveAtWorldSizesOneToFour) {
  for (int world = 1; world <= 4; ++world) {
    auto r = run_command(zt_launch(world, 29730 + world, "-- '" ZT_COMM_CHECK "'"));
    EXPECT_EQ(r.exit_code, 0) << "world " << world << ":\n" << r.output;
    for (int rank = 0; rank < world; ++rank)
      EXPECT_THAT(r.output, HasSubstr("comm check passed: rank " + std::to_string(rank) + " of " + std::to_string(world)));
  }
}

}  // namespace
}  // namespace zt
