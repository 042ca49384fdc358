// `zt launch`: worker environment and output prefixes, failure handling, restarts, signal
// forwarding, and the Gloo backend's collectives through it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "tests/support/run_dir.h"

namespace zt {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::run_command;
using testing::TempDir;

// Prints alive=PID for each pid file in dir whose process still runs (a zombie has exited:
// where no init reaps orphans, killed workers stay zombies).
std::string alive_check(const TempDir& dir) {
  return "for f in " + dir.str() + "/pid-*; do [ -s $f ] || continue; s=$(awk '{print $3}' /proc/$(cat $f)/stat 2>/dev/null); "
         "[ -n \"$s\" ] && [ \"$s\" != Z ] && echo alive=$(cat $f); done; true";
}

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

// Workers record their pid; after the launcher is SIGKILLed none may outlive it.
TEST(Launch, WorkersDieWithAKilledLauncher) {
  TempDir tmp;
  const std::string worker = "sh -c 'echo $$ > " + tmp.str() + "/pid-$RANK; exec sleep 60'";
  auto r = run_command("{ " + zt_launch(2, 29725, "-- " + worker) + " & pid=$!; for i in $(seq 100); do [ -s " + tmp.str() +
                       "/pid-0 ] && [ -s " + tmp.str() + "/pid-1 ] && break; sleep 0.1; done; kill -KILL $pid; wait $pid; " +
                       "sleep 0.5; " + alive_check(tmp) + "; }");
  EXPECT_TRUE(std::filesystem::exists(tmp.path() / "pid-1")) << r.output;
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("alive="))) << "workers outlived their launcher";
  run_command("for f in " + tmp.str() + "/pid-*; do kill -KILL $(cat $f) 2>/dev/null; done; true");
}

// The descriptors above stderr that `ls` (exec'd by a shell) holds, as "fd N -> target" per
// line prefixed by each rank's "[rank R] " (or "" outside zt launch); ls's own listing handle
// and copies of stdin/stdout/stderr are left out.
std::set<std::string> inherited_fds(const std::string& output) {
  std::set<std::string> out;
  std::map<std::string, std::set<std::string>> std_targets;  // per prefix
  std::vector<std::tuple<std::string, int, std::string>> fds;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    const size_t arrow = line.find(" -> ");
    if (arrow == std::string::npos) continue;
    const std::string prefix = line.rfind("[rank ", 0) == 0 ? line.substr(0, line.find("] ") + 2) : "";
    const size_t name_end = arrow, name_begin = line.rfind(' ', arrow - 1) + 1;
    const int fd = std::stoi(line.substr(name_begin, name_end - name_begin));
    const std::string target = line.substr(arrow + 4);
    if (fd <= 2) std_targets[prefix].insert(target);
    else if (target.rfind("/proc/", 0) != 0) fds.emplace_back(prefix, fd, target);
  }
  for (auto& [prefix, fd, target] : fds)
    if (!std_targets[prefix].count(target)) out.insert(prefix + "fd " + std::to_string(fd) + " -> " + target);
  return out;
}

// Workers inherit what the launcher inherited, with stdout and stderr replaced: no socket of
// the store (which kept its port busy after a killed launcher) and no pipe of another worker.
TEST(Launch, WorkersInheritNoDescriptorOfTheLauncher) {
  const std::string list = "sh -c 'exec ls -l /proc/self/fd'";
  const auto direct = inherited_fds(run_command(list).output);
  auto r = run_command(zt_launch(2, 29726, "-- " + list));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::set<std::string> want;
  for (const std::string rank : {"[rank 0] ", "[rank 1] "})
    for (const auto& fd : direct) want.insert(rank + fd);
  EXPECT_EQ(inherited_fds(r.output), want) << r.output;
}

// With too few descriptors for the whole group, the launcher fails naming the rank it could
// not start and stops the workers it already started instead of leaving them waiting.
TEST(Launch, ASpawnFailureStopsTheWorkersAlreadyStarted) {
  TempDir tmp;
  const std::string worker = "sh -c 'echo $$ > " + tmp.str() + "/pid-$RANK; exec sleep 60'";
  auto r = run_command("ulimit -n 20; " + zt_launch(16, 29727, "-- " + worker));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("cannot start rank")) << r.output;
  auto alive = run_command("sleep 0.3; " + alive_check(tmp));
  EXPECT_THAT(alive.output, ::testing::Not(HasSubstr("alive="))) << alive.output;
  run_command("for f in " + tmp.str() + "/pid-*; do kill -KILL $(cat $f) 2>/dev/null; done; true");
}

// When a worker is killed, its peers fail right after it (their collectives lose it): here
// rank 0 exits with 1 as soon as rank 1 is dead, usually before the launcher looks. The
// launcher reports the killed rank and its 128 + signal code, not the peer's error.
TEST(Launch, AKilledWorkerIsReportedRatherThanThePeersItTookDown) {
  TempDir tmp;
  const std::string worker =
      "sh -c 'if [ $RANK = 1 ]; then echo $$ > " + tmp.str() + "/pid-1; sleep 0.3; kill -KILL $$; fi; "
      "while [ ! -s " + tmp.str() + "/pid-1 ]; do sleep 0.01; done; "
      // Rank 0 fails only once rank 1 is dead: a zombie (Z) or reaped (no stat left). Not "while
      // sleeping": a loaded machine can show rank 1 runnable (R) before its kill.
      "while st=$(awk \"{print \\$3}\" /proc/$(cat " + tmp.str() + "/pid-1)/stat 2>/dev/null) && [ \"$st\" != Z ]; do sleep 0.005; done; exit 1'";
  for (int trial = 0; trial < 3; ++trial) {
    auto r = run_command(zt_launch(2, 29728, "-- " + worker));
    EXPECT_EQ(r.exit_code, 137) << r.output;
    EXPECT_THAT(r.output, HasSubstr("rank 1 exited with code 137"));
    std::filesystem::remove(tmp.path() / "pid-1");
  }
}

TEST(Launch, RefusesOutOfRangeNumbers) {
  for (const std::string bad : {"--master-port 99999", "--master-port 0", "--nproc-per-node 4294967297",
                                 "--node-rank 2 --nnodes 2", "--stop-timeout nan", "--max-restarts -1"}) {
    auto r = run_command("'" ZT_BINARY "' launch " + bad + " -- true");
    EXPECT_NE(r.exit_code, 0) << bad;
    EXPECT_THAT(r.output, HasSubstr("--" + bad.substr(2, bad.find(' ') - 2))) << bad << ": " << r.output;
  }
}

// A rank stuck outside the collectives (here: sleeping at step 5): its peers fail after
// parallel.timeout_s naming it, instead of waiting forever, and the launcher stops the group.
TEST(Launch, ARankThatNeverArrivesFailsItsPeersWithItsNameAfterTheTimeout) {
  TempDir tmp;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_command(zt_launch(2, 29729, "-- env ZT_TEST_FAULT=hang@5@1 '" ZT_BINARY "' train configs/test-tiny-gpt2.yaml "
                                           "--set run.out_dir=" + tmp.str() +
                                           " --set parallel.timeout_s=2 --set parallel.threads=1 --set train.steps=20"));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("did not complete within parallel.timeout_s = 2 s; rank(s) 1 never reached it"))
      << r.output;
  EXPECT_LT(s, 60) << r.output;
}

// Our ring reduce-scatter, through shared memory (ranks on one host) and over Gloo's
// point-to-point transfers (ZT_GLOO_SHM=off), times out like Gloo's collectives.
TEST(CommGloo, AReduceScatterAPeerNeverJoinsFailsNamingIt) {
  for (const std::string shm : {"auto", "off"}) {
    auto r = run_command(zt_launch(2, 29735, "-- env ZT_GLOO_SHM=" + shm + " '" ZT_COMM_CHECK "' stuck_peer"));
    EXPECT_EQ(r.exit_code, 0) << shm << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("reduce_scatter #0 did not complete within parallel.timeout_s = 2 s; rank(s) 1 "
                                    "never reached it"))
        << shm << ": " << r.output;
  }
}

// Ranks on one host reduce-scatter and all-gather through shared memory; ZT_GLOO_SHM=off
// sends everything over TCP.
TEST(CommGloo, EveryCollectiveAtWorldSizesOneToFour) {
  for (int world = 1; world <= 4; ++world) {
    auto r = run_command(zt_launch(world, 29730 + world, "-- '" ZT_COMM_CHECK "'"));
    EXPECT_EQ(r.exit_code, 0) << "world " << world << ":\n" << r.output;
    for (int rank = 0; rank < world; ++rank)
      EXPECT_THAT(r.output, HasSubstr("comm check passed: rank " + std::to_string(rank) + " of " + std::to_string(world)));
    // Only a /dev/shm without room (a small container's) may send them over TCP.
    if (r.output.find("over TCP") != std::string::npos) {
      EXPECT_THAT(r.output, HasSubstr("/dev/shm has no room")) << r.output;
    }
  }
  auto r = run_command(zt_launch(3, 29736, "-- env ZT_GLOO_SHM=off '" ZT_COMM_CHECK "'"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("comm check passed: rank 2 of 3"));
  r = run_command(zt_launch(2, 29737, "-- env ZT_GLOO_SHM=maybe '" ZT_COMM_CHECK "'"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("ZT_GLOO_SHM=maybe: expected auto, on or off"));
}

// A /dev/shm with room for one rank's channel of three (a 12 MiB tmpfs in a mount namespace
// of its own): every rank falls back to TCP together, saying why, and the collectives pass.
TEST(CommGloo, ADevShmWithoutRoomSendsEveryRankOverTcpSayingWhy) {
  if (run_command("unshare -m sh -c 'mount -t tmpfs -o size=1m tmpfs /dev/shm'").exit_code != 0)
    GTEST_SKIP() << "cannot mount a tmpfs in a mount namespace here (needs root and unshare)";
  auto r = run_command("unshare -m sh -c \"mount -t tmpfs -o size=12m tmpfs /dev/shm && " +
                       zt_launch(3, 29738, "-- '" ZT_COMM_CHECK "'") + "\"");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (int rank = 0; rank < 3; ++rank)
    EXPECT_THAT(r.output, HasSubstr("[rank " + std::to_string(rank) + "] comm check passed")) << r.output;
  EXPECT_THAT(r.output, HasSubstr("gloo: collectives go over TCP, not shared memory: "));
  EXPECT_THAT(r.output, HasSubstr("/dev/shm has no room for 8 MiB (No space left on device)"));
}

}  // namespace
}  // namespace zt
