// The WorkerTransformer (with gated attention) through the whole runtime: a stop and a resume
// at another world size, bf16, activation checkpointing at stage 3 with its profile spans,
// generation, `zt plan`, and config errors that name the key and write nothing. (ZeRO stage
// equivalence runs in tests/parallel/test_zero_equivalence.cpp with these configs.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "model/safetensors.h"
#include "tests/support/run_dir.h"
#include "tests/support/weights.h"

namespace zt {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::last_metrics;
using testing::run_command;
using testing::run_zt;
using testing::TempDir;

const char* kGpt2 = "configs/test-tiny-worker-gpt2.yaml";
const char* kLlama = "configs/test-tiny-worker-llama.yaml";

std::string train(const std::string& config, const TempDir& tmp, const std::string& name, const std::string& extra) {
  return "'" ZT_BINARY "' train " + config + " --set run.out_dir=" + tmp.str() + " --set run.name=" + name +
         " --set train.micro_batch=2 --set parallel.threads=1 " + extra;
}

// 4 ranks stopped by SIGTERM at step 20 and resumed on 2 ranks at stage 3 end where the
// uninterrupted run ends.
TEST(WorkerRuns, StoppedAndResumedAtAnotherWorldSizeMatchesTheUninterruptedRun) {
  TempDir tmp;
  const std::string common = "--set train.steps=30 --set train.global_batch=8 --set checkpoint.every=10 --set train.log_every=1";
  auto r = run_command(testing::mpirun(4) + train(kLlama, tmp, "reference", common + " --set parallel.zero_stage=2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command("ZT_TEST_FAULT=sigterm@20@1 " + testing::mpirun(4) + "-x ZT_TEST_FAULT " +
                  train(kLlama, tmp, "resumed", common + " --set parallel.zero_stage=2"));
  ASSERT_EQ(r.exit_code, 75) << r.output;
  r = run_command(testing::mpirun(2) + train(kLlama, tmp, "resumed", common + " --set parallel.zero_stage=3"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("resumed from"));
  auto [total, worst] = testing::weight_difference((tmp.path() / "reference" / "model.safetensors").string(),
                                                   (tmp.path() / "resumed" / "model.safetensors").string());
  EXPECT_LT(total, 1e-5);
  EXPECT_LT(worst, 3e-4);
  EXPECT_EQ(last_metrics(tmp.path() / "resumed")["step"], 30);
}

// As in test_mixed_precision: bf16 rounds matmul operands and saved activations, so the loss
// curve stays within 0.03 of fp32 but is not bitwise it.
TEST(WorkerRuns, Bf16TracksTheFp32LossCurve) {
  TempDir tmp;
  const std::string common = "--set train.steps=100 --set train.log_every=10 --set optim.lr=3e-3 --set train.global_batch=4";
  auto r = run_command("OMP_NUM_THREADS=1 " + train(kGpt2, tmp, "fp32", common));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command("OMP_NUM_THREADS=1 " + train(kGpt2, tmp, "bf16", common + " --set precision.compute=bf16"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto ref = testing::metrics_by_step(tmp.path() / "fp32"), got = testing::metrics_by_step(tmp.path() / "bf16");
  ASSERT_EQ(got.size(), ref.size());
  double worst = 0;
  for (const auto& [step, m] : ref) worst = std::max(worst, std::abs(got.at(step)["loss"].get<double>() - m["loss"].get<double>()));
  EXPECT_LT(worst, 0.03);
  EXPECT_GT(worst, 0.0);
  EXPECT_LT(got.at(100)["loss"].get<double>(), ref.at(10)["loss"].get<double>()) << "bf16 did not learn";
}

// Stage 3 on 2 ranks with every block checkpointed: bitwise the weights without it, and the
// profile shows the recompute spans.
TEST(WorkerRuns, CheckpointedAtStageThreeIsBitwiseAndTraced) {
  TempDir tmp;
  const std::string common =
      "--set train.steps=6 --set train.global_batch=8 --set parallel.zero_stage=3 --set profile.enabled=true"
      " --set profile.start_step=2 --set profile.steps=2";
  auto r = run_command(testing::mpirun(2) + train(kGpt2, tmp, "plain", common));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command(testing::mpirun(2) + train(kGpt2, tmp, "ckpt", common + " --set memory.activation_checkpointing=all"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  SafetensorsFile a = SafetensorsFile::open((tmp.path() / "plain" / "model.safetensors").string());
  SafetensorsFile b = SafetensorsFile::open((tmp.path() / "ckpt" / "model.safetensors").string());
  EXPECT_EQ(a.names(), b.names());
  for (const auto& name : a.names()) {
    Tensor x = a.get(name), y = b.get(name);
    EXPECT_EQ(0, std::memcmp(x.data<float>(), y.data<float>(), x.numel() * 4)) << name;
  }
  const auto trace = nlohmann::json::parse(testing::read_file(tmp.path() / "ckpt" / "trace" / "rank-00001.trace.json"));
  int recomputes = 0, block_forwards = 0;
  for (const auto& e : trace["traceEvents"]) {
    recomputes += e.value("cat", "") == "recompute";
    block_forwards += e.value("cat", "") == "forward" && e.value("name", "") == "block.1";
  }
  EXPECT_EQ(recomputes, 2 * 2 * 2) << "2 blocks x 2 micro-batches x 2 steps";
  EXPECT_EQ(block_forwards, 2 * 2);
}

TEST(WorkerRuns, TrainedModelGeneratesTextAndPlanCountsItsParameters) {
  TempDir tmp;
  auto r = run_command(train(kLlama, tmp, "run", "--set train.steps=10"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // 37 tokens: the window passes positions without a worker and the first workers.
  r = run_zt("generate " + (tmp.path() / "run").string() + " --tokens 37 --prompt ab --temperature 0");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GE(r.output.size(), 39u);

  const auto params = [](const std::string& extra) {
    auto p = run_zt("plan configs/test-tiny-worker-llama.yaml --world 2 " + extra);
    EXPECT_EQ(p.exit_code, 0) << p.output;
    return p.output;
  };
  const std::string with = params(""), without = params("--set model.worker_interval=0 --set model.worker_conv_width=0 --set model.attn_gate=false");
  EXPECT_THAT(with, HasSubstr("gated attention, workers every 4 (conv mixer of 3 taps)"));
  auto count = [](const std::string& out) {
    const auto at = out.find(" params");
    const auto from = out.rfind(' ', at - 1);
    return std::stoll(out.substr(from + 1, at - from - 1));
  };
  // Gate 32x32, mixer norm 32 and conv 32x3 per layer, 2 layers: 2 * (1024 + 32 + 96) more.
  EXPECT_EQ(count(with) - count(without), 2 * (1024 + 32 + 96));
}

TEST(WorkerRuns, BadWorkerKeysFailWithTheirNameAndWriteNothing) {
  TempDir tmp;
  const std::string out = " --set run.out_dir=" + tmp.str() + "/runs";
  struct Case {
    std::string args, message;
  } cases[] = {
      {std::string("train ") + kGpt2 + " --set model.worker_interval=5", "model.worker_interval (5) must divide data.seq_len (16)"},
      {"train configs/test-tiny-gpt2.yaml --set model.worker_conv_width=3", "model.worker_conv_width"},
      {std::string("train ") + kGpt2 + " --set model.worker_interval=-1", "model.worker_interval"},
      {std::string("train ") + kGpt2 + " --set model.attn_gate=maybe", "model.attn_gate"},
  };
  for (const Case& c : cases) {
    auto r = run_zt(c.args + out);
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_THAT(r.output, HasSubstr(c.message)) << c.args;
    EXPECT_FALSE(fs::exists(tmp.path() / "runs")) << c.args << " wrote files";
  }
}

}  // namespace
}  // namespace zt
