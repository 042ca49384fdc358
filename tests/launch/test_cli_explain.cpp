// The command line explaining itself: usage, the config key reference, `zt config`,
// `zt train --dry-run`, `zt --version`, and logs under mpirun (no colour codes, messages
// every rank reaches printed once).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/config.h"
#include "core/cpu/isa.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::run_command;
using testing::run_zt;
using testing::TempDir;

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

bool is_empty_dir(const fs::path& dir) { return fs::is_directory(dir) && fs::directory_iterator(dir) == fs::directory_iterator(); }

TEST(CliUsage, NoArgumentsPrintsUsageAndExits2) {
  auto r = run_zt("");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("usage: zt <command>"));
  EXPECT_THAT(r.output, HasSubstr("  train CONFIG.yaml"));
  EXPECT_THAT(r.output, HasSubstr("  config CONFIG.yaml"));
}

TEST(CliUsage, ABareSettingPointsAtSet) {
  for (const std::string command : {"train", "plan", "config"}) {
    auto r = run_zt(command + " configs/test-tiny-gpt2.yaml model.n_layer=4");
    EXPECT_EQ(r.exit_code, 1) << command << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("error: zt " + command + ": unexpected argument 'model.n_layer=4'; to set a "
                                    "config key write --set model.n_layer=4")) << command;
  }
  // Before the config too: not read as a config path.
  auto r = run_zt("train train.steps=3 configs/test-tiny-gpt2.yaml");
  EXPECT_THAT(r.output, HasSubstr("--set train.steps=3"));
}

TEST(CliHelp, TrainAndConfigListEveryConfigKey) {
  for (const std::string command : {"train", "config"}) {
    auto r = run_zt(command + " --help");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_THAT(r.output, HasSubstr("zt " + command + " CONFIG.yaml"));
    for (const std::string& key : config_keys()) EXPECT_THAT(r.output, HasSubstr("  " + key + " ")) << command;
    EXPECT_THAT(r.output, HasSubstr("adamw|sgd"));
  }
  EXPECT_THAT(run_zt("plan --help").output, Not(HasSubstr("model.n_layer")));
}

TEST(CliConfig, PrintsTheResolvedConfigThatReadsBackTheSame) {
  TempDir tmp;
  auto r = run_command("'" ZT_BINARY "' config configs/test-tiny-llama.yaml --set model.n_layer=3 "
                       "--set optim.schedule.kind=linear --set 'optim.betas=[0.8, 0.9]' 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("  n_layer: 3\n"));
  EXPECT_THAT(r.output, HasSubstr("    kind: linear\n"));
  EXPECT_THAT(r.output, HasSubstr("  betas: [0.8, 0.9]\n"));
  EXPECT_THAT(r.output, HasSubstr("  d_ff: "));  // family defaults resolved
  EXPECT_THAT(r.output, Not(HasSubstr("  d_ff: 0\n")));
  for (const std::string& key : config_keys()) {
    const std::string leaf = key.substr(key.rfind('.') + 1);
    EXPECT_THAT(r.output, HasSubstr(leaf + ": ")) << key;
  }
  EXPECT_EQ(parse_config(r.output, "printed"), load_config(ZT_SOURCE_DIR "/configs/test-tiny-llama.yaml",
                                                          {"model.n_layer=3", "optim.schedule.kind=linear",
                                                           "optim.betas=[0.8, 0.9]"}));
  {
    std::ofstream(tmp.path() / "resolved.yaml") << r.output;
  }
  auto again = run_command("'" ZT_BINARY "' config " + (tmp.path() / "resolved.yaml").string() + " 2>/dev/null");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(again.output, r.output);
  auto bad = run_zt("config configs/test-tiny-llama.yaml --set model.n_layers=3");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("unknown key 'model.n_layers' (did you mean 'model.n_layer'?)"));
}

TEST(CliVersion, NamesVersionCommitBuildKernelsAndCuda) {
  auto r = run_zt("--version");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("zt " ZT_PROJECT_VERSION "\n"));
  EXPECT_THAT(r.output, HasSubstr("\ncommit: "));
  EXPECT_THAT(r.output, Not(HasSubstr("commit: \n")));
  EXPECT_THAT(r.output, HasSubstr("\nbuild: "));
  EXPECT_THAT(r.output, HasSubstr("\ncpu kernels: " + cpu::isa_description() + "\n"));
#ifdef ZT_WITH_CUDA
  // The runtime version and the device count (0 with the reason on a machine without a GPU).
  EXPECT_THAT(r.output, ::testing::ContainsRegex("\ncuda: runtime [0-9]+\\.[0-9]+, [0-9]+ devices?"));
#else
  EXPECT_THAT(r.output, HasSubstr("\ncuda: not built\n"));
#endif
  r = run_command("ZT_CPU_ISA=generic '" ZT_BINARY "' --version");
  EXPECT_THAT(r.output, HasSubstr("\ncpu kernels: generic"));
}

// --dry-run runs every check a start makes and prints the plan; it never writes.
TEST(CliDryRun, PrintsThePlanAndWritesNothing) {
  TempDir tmp;
  const std::string out = " --set run.out_dir=" + tmp.str() + "/runs";
  auto r = run_zt("train configs/test-tiny-gpt2.yaml --dry-run --nproc-per-node 2 --set train.global_batch=16" + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("every check passed; nothing was written"));
  EXPECT_THAT(r.output, HasSubstr("gpt2, 2 layers, d_model 32"));
  EXPECT_THAT(r.output, HasSubstr("vocab 65, 28.1k params"));
  EXPECT_THAT(r.output, HasSubstr("2 rank(s) x micro_batch 4 x grad_accum 2 = global batch 16 samples of 16 tokens, "
                                  "256 tokens per step, 20 steps"));
  EXPECT_THAT(r.output, HasSubstr("ZeRO stage 0"));
  EXPECT_THAT(r.output, HasSubstr("start: from random weights into " + tmp.str() + "/runs/test-tiny-gpt2"));
  EXPECT_THAT(r.output, HasSubstr("memory per rank: "));
  EXPECT_THAT(r.output, HasSubstr("activations"));
  EXPECT_TRUE(is_empty_dir(tmp.path())) << "the dry run wrote files";

  // What a start refuses, a dry run refuses with the same message, still writing nothing.
  struct Case {
    std::string args, message;
  } cases[] = {
      {"--set data.train=nope.txt", "data.train: file not found: nope.txt"},
      {"--set model.n_heads=3", "model.n_heads"},
      {"--set model.init_from=missing.safetensors", "missing.safetensors"},
      {"--set train.global_batch=6", "train.global_batch (6) must be a multiple of train.micro_batch (4)"},
      {"--set train.micro_batch=1000000", "train.micro_batch 1000000"},
      {"--set checkpoint.resume=" + tmp.str() + "/no-such-checkpoint", "no-such-checkpoint"},
  };
  for (const Case& c : cases) {
    r = run_zt("train configs/test-tiny-gpt2.yaml --dry-run " + c.args + out);
    EXPECT_EQ(r.exit_code, 1) << c.args << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("error: ")) << c.args;
    EXPECT_THAT(r.output, HasSubstr(c.message)) << c.args;
    EXPECT_TRUE(is_empty_dir(tmp.path())) << c.args << " wrote files";
  }
}

// After a run, a dry run finds its checkpoint to resume, and checks init_from weights
// against the model; neither touches the run directory.
TEST(CliDryRun, FindsTheCheckpointAndChecksInitFromWeights) {
  TempDir tmp;
  const std::string common = " --set run.out_dir=" + tmp.str() + " --set parallel.threads=1";
  auto r = run_zt("train configs/test-tiny-gpt2.yaml --set train.steps=2 --set checkpoint.every=2" + common);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path run = tmp.path() / "test-tiny-gpt2";
  auto listing = [&] {
    std::vector<std::pair<std::string, fs::file_time_type>> files;
    for (const auto& e : fs::recursive_directory_iterator(tmp.path()))
      files.emplace_back(e.path().string(), fs::last_write_time(e.path()));
    std::sort(files.begin(), files.end());
    return files;
  };
  const auto before = listing();
  r = run_zt("train configs/test-tiny-gpt2.yaml --dry-run --set train.steps=4" + common);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("start: resume from " + (run / "checkpoints").string()));
  EXPECT_THAT(r.output, HasSubstr("(step 2)"));

  const std::string weights = (run / "model.safetensors").string();
  r = run_zt("train configs/test-tiny-gpt2.yaml --dry-run --set run.name=other --set model.init_from=" + weights + common);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("start: from " + weights));
  r = run_zt("train configs/test-tiny-gpt2.yaml --dry-run --set run.name=other --set model.d_model=48 "
             "--set model.init_from=" + weights + common);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("transformer.wte.weight"));
  EXPECT_THAT(r.output, HasSubstr("shape"));
  EXPECT_EQ(listing(), before) << "a dry run changed the run directory";
}

// Under mpirun every rank gets a pty, yet the logs carry no colour codes, and what every
// rank reaches alike is printed once: the stop message, and an error every rank finds.
std::string mpirun_train(const TempDir& tmp) {
  return "'" ZT_BINARY "' train configs/test-tiny-gpt2.yaml --set run.out_dir=" + tmp.str() +
         " --set train.steps=4 --set train.log_every=1 --set parallel.threads=1";
}

TEST(CliLogs, UnderMpirunNoColourAndTheStopMessageOnce) {
  TempDir tmp;
  auto r = run_command("ZT_TEST_FAULT=sigterm@2@1 " + testing::mpirun(2) + "-x ZT_TEST_FAULT " + mpirun_train(tmp));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find('\x1b'), std::string::npos) << r.output;
  EXPECT_EQ(count(r.output, "stopping at step 2"), 1u) << r.output;
  EXPECT_EQ(count(r.output, "step     2/4"), 1u) << r.output;
}

TEST(CliLogs, UnderMpirunAnErrorEveryRankFindsIsPrintedOnce) {
  TempDir tmp;
  auto r = run_command(testing::mpirun(2) + mpirun_train(tmp) + " --set checkpoint.resume=" + tmp.str() + "/no-such-checkpoint");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(count(r.output, "no-such-checkpoint"), 1u) << r.output;
  EXPECT_EQ(count(r.output, "error:"), 1u) << r.output;
  EXPECT_EQ(r.output.find('\x1b'), std::string::npos) << r.output;
}

// A config error too, found before the ranks have connected.
TEST(CliLogs, UnderMpirunAConfigErrorIsPrintedOnce) {
  TempDir tmp;
  auto r = run_command(testing::mpirun(2) + mpirun_train(tmp) + " --set model.n_layers=3");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(count(r.output, "error: --set model.n_layers: unknown key 'model.n_layers'"), 1u) << r.output;
  EXPECT_EQ(count(r.output, "error:"), 1u) << r.output;
  EXPECT_FALSE(fs::exists(tmp.path() / "test-tiny-gpt2")) << r.output;
}

}  // namespace
}  // namespace zt
