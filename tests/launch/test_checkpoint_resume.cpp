// Checkpoints end to end through the binary: resume after SIGTERM at other world sizes and
// stages, SIGKILL under `zt launch --max-restarts`, a crash mid-write, corrupt checkpoints,
// the sample stream across a stop, configuration errors, and the ckpt/export tools.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

#include "parallel/checkpoint_format.h"
#include "tests/support/checkpoint_edit.h"
#include "tests/support/run_dir.h"
#include "tests/support/weights.h"

namespace zt {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::last_metrics;
using testing::read_file;
using testing::run_command;
using testing::run_zt;
using testing::TempDir;
using testing::weight_difference;

// 30 steps of the tiny model with global batch 24 (grad_accum 3, 4, 6 and 12 at 4, 3, 2 and 1
// ranks of micro-batch 2), a checkpoint every 10 steps.
std::string train_args(const TempDir& tmp, const std::string& name, const std::string& extra = "") {
  return "train configs/test-tiny-gpt2.yaml --set run.out_dir=" + tmp.str() + " --set run.name=" + name +
         " --set train.steps=30 --set train.micro_batch=2 --set train.global_batch=24 --set parallel.threads=1"
         " --set train.log_every=1 --set checkpoint.every=10 " + extra;
}

// `zt ARGS` on `world` ranks under mpirun; `env` is passed to every rank.
testing::CommandResult mpirun_zt(int world, const std::string& args, const std::string& env = "") {
  std::string exports;
  if (!env.empty()) exports = env + " ";
  std::string forward;
  for (size_t at = 0; at < env.size();) {
    const size_t eq = env.find('=', at), sp = env.find(' ', at);
    forward += " -x " + env.substr(at, eq - at);
    at = sp == std::string::npos ? env.size() : sp + 1;
  }
  return run_command(exports + testing::mpirun(world) + forward + " '" ZT_BINARY "' " + args);
}

std::string zt_launch(int world, int port, const std::string& rest) {
  return "'" ZT_BINARY "' launch --nproc-per-node " + std::to_string(world) + " --master-port " +
         std::to_string(port) + " " + rest;
}

void expect_same_weights(const fs::path& a, const fs::path& b, const std::string& what) {
  auto [total, worst] = weight_difference((a / "model.safetensors").string(), (b / "model.safetensors").string());
  // Only the order of float additions differs between world sizes (see test_zero_equivalence
  // for why a single tensor may differ more).
  EXPECT_LT(total, 1e-5) << what;
  EXPECT_LT(worst, 3e-4) << what;
  const double la = last_metrics(a)["loss"], lb = last_metrics(b)["loss"];
  EXPECT_EQ(last_metrics(b)["step"], 30) << what;
  EXPECT_NEAR(lb, la, 1e-5 * la) << what;
}

std::vector<std::string> tree(const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root))
    out.push_back(fs::relative(e.path(), root).string() + (e.is_regular_file() ? ":" + std::to_string(e.file_size()) : ""));
  std::sort(out.begin(), out.end());
  return out;
}

class ResumeEquivalence : public ::testing::TestWithParam<int> {};

// 4 ranks stopped by SIGTERM at step 20 and resumed on 2 ranks, on 3 ranks and on 1 rank at
// stage 0 end where the uninterrupted 4-rank run ends.
TEST_P(ResumeEquivalence, StoppedAtStep20AndResumedElsewhereMatchesTheUninterruptedRun) {
  const int stage = GetParam();
  const std::string s = " --set parallel.zero_stage=" + std::to_string(stage);
  TempDir tmp;
  auto r = mpirun_zt(4, train_args(tmp, "reference", s));
  ASSERT_EQ(r.exit_code, 0) << r.output;

  r = mpirun_zt(4, train_args(tmp, "stopped", s), "ZT_TEST_FAULT=sigterm@20@1");
  ASSERT_EQ(r.exit_code, 75) << r.output;
  EXPECT_THAT(r.output, HasSubstr("stopping at step 20"));
  const fs::path ckpts = tmp.path() / "stopped" / "checkpoints";
  EXPECT_EQ(read_latest(ckpts), ckpts / checkpoint_name(20));
  EXPECT_FALSE(fs::exists(tmp.path() / "stopped" / "model.safetensors"));

  struct Target {
    int world, stage;
  };
  for (const Target t : {Target{2, stage}, Target{3, stage}, Target{1, 0}}) {
    const std::string name = "resumed-w" + std::to_string(t.world) + "-s" + std::to_string(t.stage);
    fs::copy(tmp.path() / "stopped", tmp.path() / name, fs::copy_options::recursive);
    r = mpirun_zt(t.world, train_args(tmp, name, " --set parallel.zero_stage=" + std::to_string(t.stage)));
    ASSERT_EQ(r.exit_code, 0) << name << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr("resumed from " + (tmp.path() / name / "checkpoints" / checkpoint_name(20)).string() +
                                    " (step 20, saved by 4 rank(s) at ZeRO stage " + std::to_string(stage)));
    expect_same_weights(tmp.path() / "reference", tmp.path() / name, name);
    // metrics.jsonl continues: steps 1..30 once each.
    int64_t expect_step = 1;
    for (const auto& m : testing::metrics_records(tmp.path() / name)) {
      if (m.contains("step")) {
        EXPECT_EQ(m["step"].get<int64_t>(), expect_step++) << name;
      }
    }
    EXPECT_EQ(expect_step, 31) << name;
  }

  // The reference's last checkpoint (4 ranks) exports in one process to the run's own weights.
  const fs::path exported = tmp.path() / "exported.safetensors";
  r = run_zt("export " + (tmp.path() / "reference" / "checkpoints" / checkpoint_name(30)).string() + " -o " +
             exported.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto [total, worst] = weight_difference(exported.string(), (tmp.path() / "reference" / "model.safetensors").string());
  EXPECT_EQ(total, 0.0);
  EXPECT_EQ(worst, 0.0);

  r = run_zt("ckpt inspect " + (tmp.path() / "reference" / "checkpoints" / checkpoint_name(30)).string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const std::string& want : std::vector<std::string>{"step 30", "saved by 4 rank(s) at ZeRO stage " + std::to_string(stage), "exp_avg_sq",
                                 shard_file_name(3, 4), "ok"})
    EXPECT_THAT(r.output, HasSubstr(want));
}

INSTANTIATE_TEST_SUITE_P(Stages, ResumeEquivalence, ::testing::Values(1, 2, 3),
                         [](const auto& info) { return "stage" + std::to_string(info.param); });

TEST(CheckpointFaults, SigkilledWorkerUnderZtLaunchRestartsFromTheLastCheckpoint) {
  TempDir tmp;
  const std::string s = " --set parallel.zero_stage=2";
  auto r = run_command(zt_launch(4, 29750, "-- '" ZT_BINARY "' " + train_args(tmp, "reference", s)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command("ZT_TEST_FAULT=sigkill@15@1 " +
                  zt_launch(4, 29751, "--max-restarts 1 -- '" ZT_BINARY "' " + train_args(tmp, "killed", s)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("restarting the group (restart 1 of 1)"));
  EXPECT_THAT(r.output, HasSubstr("resumed from " + (tmp.path() / "killed" / "checkpoints" / checkpoint_name(10)).string()));
  expect_same_weights(tmp.path() / "reference", tmp.path() / "killed", "sigkill");
}

// SIGKILL of one rank halfway through writing its shard, in the training thread (sync) or
// in the background writer (async): the half-written checkpoint is never used.
class CrashInSave : public ::testing::TestWithParam<bool> {};

TEST_P(CrashInSave, LeavesTheLastCheckpointLoadable) {
  TempDir tmp;
  const std::string mode = GetParam() ? "--set checkpoint.async=true" : "";
  auto r = mpirun_zt(2, train_args(tmp, "reference"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = mpirun_zt(2, train_args(tmp, "crashed", mode), "ZT_TEST_FAULT=crash_in_save@20@1");
  ASSERT_NE(r.exit_code, 0) << r.output;
  const fs::path ckpts = tmp.path() / "crashed" / "checkpoints";
  EXPECT_EQ(read_latest(ckpts), ckpts / checkpoint_name(10));
  EXPECT_TRUE(fs::exists(ckpts / (checkpoint_name(20) + ".tmp"))) << "the crash did not happen mid-write";
  EXPECT_FALSE(fs::exists(ckpts / checkpoint_name(20)));

  r = mpirun_zt(2, train_args(tmp, "crashed", mode));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("resumed from " + (ckpts / checkpoint_name(10)).string()));
  EXPECT_FALSE(fs::exists(ckpts / (checkpoint_name(20) + ".tmp"))) << "the partial checkpoint was not cleaned up";
  EXPECT_TRUE(fs::exists(ckpts / checkpoint_name(20)));
  expect_same_weights(tmp.path() / "reference", tmp.path() / "crashed", "crash in save");
}

INSTANTIATE_TEST_SUITE_P(Modes, CrashInSave, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "async" : "sync"; });

TEST(CheckpointFaults, ACorruptLatestStopsWithItsNameOrFallsBackAndNothingIsDeleted) {
  TempDir tmp;
  auto r = run_zt(train_args(tmp, "reference"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command("ZT_TEST_FAULT=sigterm@20 OMP_NUM_THREADS=1 '" ZT_BINARY "' " + train_args(tmp, "run"));
  ASSERT_EQ(r.exit_code, 75) << r.output;
  const fs::path ckpts = tmp.path() / "run" / "checkpoints";
  const fs::path shard = ckpts / checkpoint_name(20) / shard_file_name(0, 1);
  {
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(1000);
    char c;
    f.read(&c, 1);
    c ^= 0x01;
    f.seekp(1000);
    f.write(&c, 1);
  }
  const auto before = tree(tmp.path() / "run");

  r = run_zt(train_args(tmp, "run"));  // on_corrupt: error is the default
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(shard.string()));
  EXPECT_THAT(r.output, HasSubstr("crc32c"));
  EXPECT_THAT(r.output, HasSubstr("on_corrupt: previous"));
  EXPECT_EQ(tree(tmp.path() / "run"), before) << "a refused resume changed the run directory";

  r = run_command("OMP_NUM_THREADS=1 '" ZT_BINARY "' ckpt verify " + ckpts.string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr(shard.string()));

  r = run_zt(train_args(tmp, "run", "--set checkpoint.on_corrupt=previous"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("failed verification, skipping it (kept on disk): " + shard.string()));
  EXPECT_THAT(r.output, HasSubstr("resuming from " + (ckpts / checkpoint_name(10)).string() + ", the newest intact"));
  expect_same_weights(tmp.path() / "reference", tmp.path() / "run", "fallback");
  // The corrupt checkpoint was set aside when step 20 was saved again, not deleted.
  int set_aside = 0;
  for (const auto& e : fs::directory_iterator(ckpts))
    if (e.path().filename().string().starts_with(checkpoint_name(20) + ".replaced-")) {
      ++set_aside;
      EXPECT_TRUE(fs::exists(e.path() / shard_file_name(0, 1)));
    }
  EXPECT_EQ(set_aside, 1);
}

// A `latest` pointing anywhere but at a complete checkpoint beside it: verify fails naming it,
// resume refuses without touching the run, and on_corrupt: previous ignores it.
TEST(CheckpointFaults, ABadLatestFailsVerifyAndResumeAndNeverLoadsAnotherRun) {
  TempDir tmp;
  auto r = run_command("ZT_TEST_FAULT=sigterm@20 OMP_NUM_THREADS=1 '" ZT_BINARY "' " + train_args(tmp, "run"));
  ASSERT_EQ(r.exit_code, 75) << r.output;
  const fs::path ckpts = tmp.path() / "run" / "checkpoints";
  for (const std::string bad : {"garbage", "../..", "/" , ""}) {
    std::ofstream(ckpts / "latest") << bad << "\n";
    const auto before = tree(tmp.path() / "run");
    r = run_command("'" ZT_BINARY "' ckpt verify " + (tmp.path() / "run").string());
    EXPECT_EQ(r.exit_code, 1) << bad << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr((ckpts / "latest").string())) << bad;
    r = run_zt(train_args(tmp, "run"));
    EXPECT_NE(r.exit_code, 0) << bad << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr((ckpts / "latest").string())) << bad;
    EXPECT_EQ(tree(tmp.path() / "run"), before) << bad << ": a refused resume changed the run directory";
  }
  r = run_zt(train_args(tmp, "run", "--set checkpoint.on_corrupt=previous --set train.steps=21"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("resumed from " + (ckpts / checkpoint_name(20)).string()));
}

// The sampler's record in meta.json is checked like the rest: a resealed bad value is refused
// naming the file and key, and nothing in the run changes.
TEST(CheckpointFaults, ABadSamplerStateIsRefusedNamingTheKey) {
  TempDir tmp;
  auto r = run_command("ZT_TEST_FAULT=sigterm@10 OMP_NUM_THREADS=1 '" ZT_BINARY "' " + train_args(tmp, "run"));
  ASSERT_EQ(r.exit_code, 75) << r.output;
  const fs::path dir = tmp.path() / "run" / "checkpoints" / checkpoint_name(10);
  testing::reseal_meta(dir, [](nlohmann::json& j) { j["state"]["sampler"]["epoch"] = -3; });
  const auto before = tree(tmp.path() / "run");
  r = run_zt(train_args(tmp, "run"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr((dir / kMetaFile).string()));
  EXPECT_THAT(r.output, HasSubstr("epoch"));
  EXPECT_EQ(tree(tmp.path() / "run"), before);
  // `zt ckpt inspect` shows such a value as written rather than failing on it.
  testing::reseal_meta(dir, [](nlohmann::json& j) { j["state"]["sampler"]["epoch"] = "three"; });
  r = run_zt("ckpt inspect " + dir.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("(epoch \"three\")"));
}

// Step -> ids, from every PREFIX.rank<r> file, in rank order (= stream order).
std::map<int64_t, std::vector<int64_t>> read_sample_logs(const std::string& prefix, int world) {
  std::map<int64_t, std::vector<int64_t>> steps;
  for (int r = 0; r < world; ++r) {
    std::istringstream in(read_file(prefix + ".rank" + std::to_string(r)));
    for (std::string line; std::getline(in, line);) {
      std::istringstream fields(line);
      int64_t step, id;
      fields >> step;
      while (fields >> id) steps[step].push_back(id);
    }
  }
  return steps;
}

TEST(CheckpointResume, EverySampleIsSeenOncePerEpochAcrossAStopAndAWorldSizeChange) {
  TempDir tmp;
  // A small corpus, so that 30 steps of 24 samples span several epochs.
  const fs::path text = tmp.path() / "small.txt";
  std::ofstream(text) << read_file(fs::path(ZT_SOURCE_DIR) / "data" / "tinyshakespeare.txt").substr(0, 1500);
  const std::string args = train_args(tmp, "run", "--set data.train=" + text.string() + " --set checkpoint.every=0");
  const std::string before = tmp.str() + "/before", after = tmp.str() + "/after";
  auto r = mpirun_zt(4, args, "ZT_TEST_FAULT=sigterm@13@2 ZT_TEST_SAMPLE_LOG=" + before);
  ASSERT_EQ(r.exit_code, 75) << r.output;
  r = mpirun_zt(2, args, "ZT_TEST_SAMPLE_LOG=" + after);
  ASSERT_EQ(r.exit_code, 0) << r.output;

  auto steps = read_sample_logs(before, 4);
  ASSERT_EQ(steps.size(), 13u);
  EXPECT_EQ(steps.rbegin()->first, 13);
  for (const auto& [step, ids] : read_sample_logs(after, 2)) {
    EXPECT_EQ(steps.count(step), 0u) << "step " << step << " ran twice";
    steps[step] = ids;
  }
  ASSERT_EQ(steps.size(), 30u);
  std::vector<int64_t> stream;
  for (const auto& [step, ids] : steps) {
    EXPECT_EQ(ids.size(), 24u) << "step " << step;
    stream.insert(stream.end(), ids.begin(), ids.end());
  }
  const int64_t S = *std::max_element(stream.begin(), stream.end()) + 1;
  ASSERT_LT(S * 3, static_cast<int64_t>(stream.size())) << "the corpus should span several epochs";
  for (int64_t e = 0; (e + 1) * S <= static_cast<int64_t>(stream.size()); ++e) {
    std::set<int64_t> epoch(stream.begin() + e * S, stream.begin() + (e + 1) * S);
    EXPECT_EQ(static_cast<int64_t>(epoch.size()), S) << "epoch " << e << " repeats or skips samples";
  }
}

// Token shards (a directory of 8 shards, val from its own file) read as one dataset: a run
// stopped at step 13 on 4 ranks and resumed on 2 draws the uninterrupted run's samples at
// every step, ends with its weights, and saves the same sampler state.
TEST(CheckpointResume, AShardedDatasetResumesOnAnotherWorldSizeWithTheSameSamplesAndState) {
  TempDir tmp;
  const fs::path text = tmp.path() / "small.txt";
  std::ofstream(text) << read_file(fs::path(ZT_SOURCE_DIR) / "data" / "tinyshakespeare.txt").substr(0, 4000);
  const std::string shards = tmp.str() + "/shards";
  auto r = run_zt("data prepare " + text.string() + " -o " + shards + " --tokenizer byte --shard-tokens 500");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(fs::exists(shards + "/small.train.000007.bin")) << r.output;  // 3600 train tokens
  const std::string data = " --set data.tokenizer=none --set data.train=" + shards + " --set data.val=" + shards +
                           " --set train.eval_every=10 --set train.eval_batches=2";
  auto samples = [&](const std::string& prefix, int world) { return read_sample_logs(prefix, world); };
  r = mpirun_zt(4, train_args(tmp, "reference", data), "ZT_TEST_SAMPLE_LOG=" + tmp.str() + "/reference");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("from 8 shards"));
  r = mpirun_zt(4, train_args(tmp, "run", data), "ZT_TEST_FAULT=sigterm@13@2 ZT_TEST_SAMPLE_LOG=" + tmp.str() + "/before");
  ASSERT_EQ(r.exit_code, 75) << r.output;
  r = mpirun_zt(2, train_args(tmp, "run", data), "ZT_TEST_SAMPLE_LOG=" + tmp.str() + "/after");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  auto resumed = samples(tmp.str() + "/before", 4);
  for (const auto& [step, ids] : samples(tmp.str() + "/after", 2)) resumed[step] = ids;
  const auto reference = samples(tmp.str() + "/reference", 4);
  ASSERT_EQ(reference.size(), 30u);
  EXPECT_EQ(resumed, reference);
  expect_same_weights(tmp.path() / "reference", tmp.path() / "run", "sharded resume");
  auto sampler_state = [&](const std::string& run) {
    const auto meta = nlohmann::json::parse(read_file(tmp.path() / run / "checkpoints" / checkpoint_name(30) / kMetaFile));
    return meta.at("state").at("sampler");
  };
  EXPECT_EQ(sampler_state("run"), sampler_state("reference"));
  EXPECT_EQ(sampler_state("run").at("consumed_samples"), 30 * 24);
}

// Checkpoints do not know devices: shard files hold host floats and meta.json names no
// device; only the saved config says runtime.device. A checkpoint whose config says cuda (what
// a GPU run writes) resumes on the CPU, and its tools read it, as if a CPU run had written it.
// (Saving from and loading into GPU memory is checked by CudaTrain.* on a GPU.)
TEST(CheckpointResume, ACheckpointOfACudaRunResumesOnTheCpu) {
  TempDir tmp;
  const std::string base = "train configs/test-tiny-gpt2.yaml --set run.out_dir=" + tmp.str() +
                           " --set parallel.threads=1 --set train.log_every=1 --set checkpoint.every=10";
  auto r = run_zt(base + " --set run.name=whole --set train.steps=20");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_zt(base + " --set run.name=split --set train.steps=10");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path ckpt = tmp.path() / "split" / "checkpoints" / checkpoint_name(10);
  const std::string meta = read_file(ckpt / kMetaFile);
  EXPECT_THAT(meta, Not(HasSubstr("cuda")));
  EXPECT_THAT(meta, HasSubstr("device: cpu"));  // in the saved config, and only there
  testing::reseal_meta(ckpt, [](nlohmann::json& j) {
    std::string config = j["config"].get<std::string>();
    config.replace(config.find("device: cpu"), 11, "device: cuda");
    j["config"] = config;
  });
  r = run_zt("ckpt inspect " + ckpt.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = run_zt(base + " --set run.name=split --set train.steps=20");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("resumed from"));
  auto [total, worst] = weight_difference((tmp.path() / "whole" / "model.safetensors").string(),
                                          (tmp.path() / "split" / "model.safetensors").string());
  EXPECT_EQ(total, 0) << "the same CPU kernels on the same state: bitwise the same weights";
  EXPECT_EQ(last_metrics(tmp.path() / "split")["loss"], last_metrics(tmp.path() / "whole")["loss"]);
}

TEST(CheckpointResume, ResumingWithAnotherModelOrBatchIsRefusedAndChangesNothing) {
  TempDir tmp;
  auto r = run_command("ZT_TEST_FAULT=sigterm@10 OMP_NUM_THREADS=1 '" ZT_BINARY "' " + train_args(tmp, "run"));
  ASSERT_EQ(r.exit_code, 75) << r.output;
  const auto before = tree(tmp.path() / "run");

  r = run_zt(train_args(tmp, "run", "--set model.d_model=48"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("holds another model"));
  EXPECT_THAT(r.output, HasSubstr("transformer.wte.weight has shape [65, 32] in the checkpoint, [65, 48] in this model"));

  r = run_zt(train_args(tmp, "run", "--set train.global_batch=16"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("train.global_batch is 16 but checkpoint"));

  r = run_zt(train_args(tmp, "run", "--set train.micro_batch=5"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("global batch 24, which 1 rank(s) x train.micro_batch 5 cannot split"));

  EXPECT_EQ(tree(tmp.path() / "run"), before) << "a refused resume changed the run directory";
  r = run_zt(train_args(tmp, "run", "--set train.micro_batch=3"));  // 24 = 3 x 8 on one rank
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("resumed from"));
}

// SIGTERM to `zt launch` reaches every worker, which finish their step, save and exit 75;
// a second signal exits at once and leaves no checkpoint behind.
TEST(CheckpointFaults, SignalsToTheLauncherSaveOnceAndExitAtOnceTwice) {
  TempDir tmp;
  const std::string args = train_args(tmp, "run", "--set train.steps=100000 --set checkpoint.every=0");
  const fs::path metrics = tmp.path() / "run" / "metrics.jsonl";
  const std::string wait_for_steps = "for i in $(seq 600); do [ -s " + metrics.string() + " ] && break; sleep 0.05; done; ";
  auto r = run_command("{ " + zt_launch(2, 29752, "-- '" ZT_BINARY "' " + args) + " & pid=$!; " + wait_for_steps +
                       "kill -TERM $pid; wait $pid; echo launcher-exit=$?; }");
  EXPECT_THAT(r.output, HasSubstr("launcher-exit=75"));
  const fs::path ckpts = tmp.path() / "run" / "checkpoints";
  auto latest = read_latest(ckpts);
  ASSERT_TRUE(latest.has_value()) << r.output;
  r = run_zt("ckpt verify " + latest->string());
  EXPECT_EQ(r.exit_code, 0) << r.output;

  // Two signals to one process, the second after the first is recorded and before the step
  // that saw it has saved. The process sends them itself at step 2 (ZT_TEST_FAULT): sent from
  // a shell 0.1 s apart, on a loaded machine the second one could arrive after the save.
  TempDir tmp2;
  r = run_command("ZT_TEST_FAULT=sigterm_twice@2 OMP_NUM_THREADS=1 '" ZT_BINARY "' " +
                  train_args(tmp2, "run", "--set checkpoint.every=0") + "; echo exit=$?");
  EXPECT_THAT(r.output, HasSubstr("exit=143"));
  EXPECT_THAT(r.output, Not(HasSubstr("checkpoint step 2 saved")));
  EXPECT_FALSE(fs::exists(tmp2.path() / "run" / "checkpoints" / kLatestFile)) << r.output;
  EXPECT_FALSE(fs::exists(tmp2.path() / "run" / "checkpoints" / "step-00000002")) << r.output;
}

}  // namespace
}  // namespace zt
