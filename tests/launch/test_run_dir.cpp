// The run directory under misuse: two trainings on one directory, re-running over a finished
// run, records superseded by a resume, a full disk and a read-only one. Each must end in one
// message naming the path, and leave what the previous run wrote intact.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <fstream>

#include "parallel/checkpoint_format.h"
#include "tests/support/run_dir.h"
#include "tests/support/weights.h"

namespace zt {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::run_command;
using testing::run_zt;
using testing::TempDir;

std::string train_args(const fs::path& out, const std::string& extra = "") {
  return "train configs/test-tiny-gpt2.yaml --set run.out_dir=" + out.string() +
         " --set run.name=run --set parallel.threads=1 --set train.log_every=1 " + extra;
}

// Every file under root with its size and contents' hash: what "intact" means here.
std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file() || e.path().filename() == ".lock") continue;
    out[fs::relative(e.path(), root).string()] = std::to_string(std::hash<std::string>{}(testing::read_file(e.path())));
  }
  return out;
}

TEST(RunDir, ASecondTrainingOnTheSameDirectoryIsRefusedWhileTheFirstRuns) {
  TempDir tmp;
  const fs::path run = tmp.path() / "run";
  // The first run trains until killed; the second, even with run.overwrite, starts once the
  // first has logged and must not touch its directory.
  auto r = run_command("{ OMP_NUM_THREADS=1 '" ZT_BINARY "' " + train_args(tmp.path(), "--set train.steps=1000000") +
                       " > " + tmp.str() + "/first.log 2>&1 & pid=$!; for i in $(seq 300); do [ -s " +
                       (run / "metrics.jsonl").string() + " ] && break; sleep 0.1; done; OMP_NUM_THREADS=1 '" ZT_BINARY "' " +
                       train_args(tmp.path(), "--set train.steps=1000000 --set run.overwrite=true") +
                       "; echo second=$?; kill -KILL $pid; }");
  EXPECT_THAT(r.output, HasSubstr("is in use by another zt train (pid")) << r.output;
  EXPECT_THAT(r.output, HasSubstr("second=1")) << r.output;
}

TEST(RunDir, StartingOverInAFinishedRunIsRefusedUnlessAskedFor) {
  TempDir tmp;
  auto r = run_zt(train_args(tmp.path(), "--set train.steps=5"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto before = snapshot(tmp.path());
  ASSERT_TRUE(before.count("run/model.safetensors"));
  r = run_zt(train_args(tmp.path(), "--set train.steps=5"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("holds another run (metrics.jsonl, model.safetensors)"));
  EXPECT_THAT(r.output, HasSubstr("run.overwrite: true"));
  EXPECT_EQ(snapshot(tmp.path()), before) << "a refused run changed files";
  r = run_zt(train_args(tmp.path(), "--set train.steps=3 --set run.overwrite=true"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(testing::last_metrics(tmp.path() / "run")["step"], 3);
}

// Records logged after the checkpoint a resume starts from are trained again; the previous
// run's are set aside, not deleted.
TEST(RunDir, ResumeKeepsTheSupersededRecordsBeside) {
  TempDir tmp;
  auto r = run_command("ZT_TEST_FAULT=sigkill@15 OMP_NUM_THREADS=1 '" ZT_BINARY "' " +
                       train_args(tmp.path(), "--set train.steps=20 --set checkpoint.every=10"));
  ASSERT_NE(r.exit_code, 0) << r.output;
  const std::string killed_metrics = testing::read_file(tmp.path() / "run" / "metrics.jsonl");
  r = run_zt(train_args(tmp.path(), "--set train.steps=20 --set checkpoint.every=10"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("the previous ones are kept in"));
  std::string aside;
  for (const auto& e : fs::directory_iterator(tmp.path() / "run"))
    if (e.path().filename().string().starts_with("metrics.jsonl.replaced-")) aside = testing::read_file(e.path());
  ASSERT_FALSE(aside.empty());
  EXPECT_THAT(killed_metrics, HasSubstr(aside)) << "the set-aside records are the killed run's last ones";
  EXPECT_THAT(aside, HasSubstr("\"step\":11"));
  EXPECT_EQ(testing::last_metrics(tmp.path() / "run")["step"], 20);
}

// A small tmpfs mounted for the test (root only; skipped where mounting is not allowed).
class SmallDisk {
 public:
  SmallDisk(const fs::path& dir, const std::string& options) : dir_(dir) {
    fs::create_directories(dir);
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  // Fills the disk but `leave` bytes with a file that fill() returns.
  fs::path fill(int64_t leave) const {
    const fs::path filler = dir_ / "filler";
    run_command("dd if=/dev/zero of=" + filler.string() + " bs=4k 2>/dev/null; truncate -s -" + std::to_string(leave) +
                " " + filler.string());
    return filler;
  }

 private:
  fs::path dir_;
  bool mounted_ = false;
};

TEST(RunDir, AFullDiskEndsInOneMessageAndKeepsThePreviousCheckpoint) {
  TempDir tmp;
  SmallDisk disk(tmp.path() / "disk", "size=8m");
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  const fs::path out = tmp.path() / "disk";
  auto r = run_zt(train_args(out, "--set train.steps=10 --set checkpoint.every=10"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path ckpts = out / "run" / "checkpoints";

  // Room for the config and the metrics, none for the next checkpoint.
  const fs::path filler = disk.fill(64 << 10);
  const auto before = snapshot(ckpts);
  r = run_zt(train_args(out, "--set train.steps=20 --set checkpoint.every=5"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("No space left on device")) << r.output;
  EXPECT_THAT(r.output, HasSubstr(ckpts.string())) << r.output;
  EXPECT_EQ(read_latest(ckpts), ckpts / checkpoint_name(10));
  EXPECT_FALSE(fs::exists(ckpts / (checkpoint_name(15) + ".tmp"))) << "the failed save left its partial directory";
  EXPECT_EQ(r.output.find("error"), r.output.rfind("error")) << "more than one message:\n" << r.output;
  std::map<std::string, std::string> step10_before;
  for (auto& [k, v] : before)
    if (k.starts_with(checkpoint_name(10) + "/")) step10_before[k.substr(checkpoint_name(10).size() + 1)] = v;
  EXPECT_EQ(snapshot(ckpts / checkpoint_name(10)), step10_before);

  // No room at all: the first file written (config.yaml, vocab.json, then the metrics) fails
  // with one message naming it, and the records already there stay whole.
  disk.fill(0);
  const std::string metrics_before = testing::read_file(out / "run" / "metrics.jsonl");
  r = run_zt(train_args(out, "--set train.steps=20 --set checkpoint.every=0"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("No space left on device")) << r.output;
  EXPECT_THAT(r.output, HasSubstr("error: ")) << r.output;
  EXPECT_THAT(r.output, HasSubstr((out / "run").string())) << r.output;
  EXPECT_EQ(testing::read_file(out / "run" / "metrics.jsonl").substr(0, metrics_before.size()), metrics_before);

  // Space again: the run resumes from the intact checkpoint.
  fs::remove(filler);
  r = run_zt(train_args(out, "--set train.steps=20 --set checkpoint.every=10"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("resumed from " + (ckpts / checkpoint_name(10)).string()));
}

TEST(RunDir, AReadOnlyCheckpointDirIsFoundBeforeTraining) {
  TempDir tmp;
  SmallDisk disk(tmp.path() / "ro", "size=1m");
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  ASSERT_EQ(::mount(nullptr, (tmp.path() / "ro").c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr), 0);
  auto r = run_zt(train_args(tmp.path() / "runs", "--set train.steps=5 --set checkpoint.every=5 --set checkpoint.dir=" +
                                                      (tmp.path() / "ro" / "ckpt").string()));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("checkpoint.dir"));
  EXPECT_THAT(r.output, HasSubstr("Read-only file system"));
  EXPECT_FALSE(fs::exists(tmp.path() / "runs")) << "files were written before the error";
}

TEST(RunDir, AnEmptyOutDirIsRefused) {
  TempDir tmp;
  auto r = run_zt("train configs/test-tiny-gpt2.yaml --set run.out_dir= --set train.steps=1");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("run.out_dir"));
}

}  // namespace
}  // namespace zt
