// `zt plan` against measurement: the planned bytes per rank of 2-rank runs at ZeRO stages
// 0-3 (fp32; bf16 with activation checkpointing; bf16 with bf16 gradient reduction) within
// 10% of the allocator's measured per-step peak; the largest micro-batch under a budget; the
// command's table and errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "launch/memory_plan.h"
#include "launch/train_data.h"
#include "launch/train_setup.h"
#include "tests/support/run_dir.h"
#include "tests/support/weights.h"

namespace zt {
namespace {

using ::testing::HasSubstr;
using testing::run_command;
using testing::TempDir;

const std::string kData = " --set data.train=" ZT_SOURCE_DIR "/data/tinyshakespeare.txt";

PlanInput plan_input(const std::string& config, int stage, Precision precision, ActivationCheckpointing ckpt,
                     Precision reduce = Precision::fp32) {
  Config cfg = load_config(std::string(ZT_SOURCE_DIR) + "/" + config, {"data.train=" ZT_SOURCE_DIR "/data/tinyshakespeare.txt"});
  cfg.model.vocab_size = plan_data(cfg.data, cfg.model.vocab_size).vocab_size;
  PlanInput in;
  in.spec = model_spec(cfg);
  in.world = 2;
  in.stage = stage;
  in.micro_batch = cfg.train.micro_batch;
  in.seq_len = cfg.data.seq_len;
  in.compute = precision;
  in.reduce = reduce;
  MemoryConfig m;
  m.activation_checkpointing = ckpt;
  in.checkpointed = checkpointed_layers(m, in.spec.n_layer);
  return in;
}

class PlanAgainstMeasurement : public ::testing::TestWithParam<const char*> {};

TEST_P(PlanAgainstMeasurement, WithinTenPercentOfThePeakPerRankAtEveryStage) {
  const std::string config = GetParam();
  TempDir tmp;
  struct Variant {
    Precision precision;
    ActivationCheckpointing ckpt;
    Precision reduce;
  };
  for (const Variant v : {Variant{Precision::fp32, ActivationCheckpointing::none, Precision::fp32},
                          Variant{Precision::bf16, ActivationCheckpointing::all, Precision::fp32},
                          Variant{Precision::bf16, ActivationCheckpointing::none, Precision::bf16}})
    for (int stage = 0; stage <= 3; ++stage) {
      const std::string name = std::string("s") + std::to_string(stage) + "-" + std::string(to_string(v.precision)) + "-ckpt-" +
                               std::string(to_string(v.ckpt)) + "-reduce-" + std::string(to_string(v.reduce));
      auto r = run_command(
          testing::mpirun(2) + "'" ZT_BINARY "' train " + config + " --set run.out_dir=" + tmp.str() + " --set run.name=" + name +
          " --set train.steps=3 --set train.log_every=1 --set parallel.threads=1 --set parallel.zero_stage=" +
          std::to_string(stage) + " --set precision.compute=" + std::string(to_string(v.precision)) +
          " --set memory.activation_checkpointing=" + std::string(to_string(v.ckpt)) +
          " --set precision.reduce=" + std::string(to_string(v.reduce)));
      ASSERT_EQ(r.exit_code, 0) << r.output;
      double measured = 0;  // the step's peak, highest rank
      const nlohmann::json record = testing::last_metrics(tmp.path() / name);
      for (const auto& rank : record["ranks"]) measured = std::max(measured, rank["peak_bytes"].get<double>());
      const double planned = static_cast<double>(plan_memory(plan_input(config, stage, v.precision, v.ckpt, v.reduce)).total());
      EXPECT_NEAR(planned / measured, 1.0, 0.10) << name << ": planned " << planned << " measured " << measured;
    }
}

INSTANTIATE_TEST_SUITE_P(Configs, PlanAgainstMeasurement,
                         ::testing::Values("configs/test-tiny-gpt2.yaml", "configs/test-tiny-llama.yaml",
                                           "configs/test-tiny-worker-gpt2.yaml", "configs/test-tiny-worker-llama.yaml",
                                           "configs/test-tiny-moe.yaml"),
                         [](const auto& info) {
                           const std::string c = info.param;
                           return std::string(c.find("worker") != std::string::npos ? "worker_"
                                              : c.find("moe") != std::string::npos  ? "moe_"
                                                                                    : "") +
                                  (c.find("gpt2") != std::string::npos ? "gpt2" : "llama");
                         });

TEST(MemoryPlan, ModelStateFollowsTheStagesAndCheckpointingSavesActivations) {
  const PlanInput s0 = plan_input("configs/shakespeare-char.yaml", 0, Precision::fp32, ActivationCheckpointing::none);
  auto at = [](const PlanBytes& p, MemTag t) { return p.by_tag[static_cast<int>(t)]; };
  PlanInput s1 = s0, s3 = s0, ck = s0;
  s1.stage = 1;
  s3.stage = 3;
  ck.checkpointed.assign(ck.checkpointed.size(), true);
  const PlanBytes p0 = plan_memory(s0), p1 = plan_memory(s1), p3 = plan_memory(s3), pc = plan_memory(ck);
  EXPECT_NEAR(double(at(p1, MemTag::optimizer)) / at(p0, MemTag::optimizer), 0.5, 0.01);  // sharded over 2 ranks
  EXPECT_LT(at(p3, MemTag::params), at(p0, MemTag::params));
  EXPECT_LT(at(pc, MemTag::activations), at(p0, MemTag::activations) / 2);
  EXPECT_EQ(at(pc, MemTag::params), at(p0, MemTag::params));
}

TEST(MemoryPlan, ActivationsAndWorkspaceDependOnTheTokenCountNotOnT) {
  // Attention saves O(T) per sequence (no (B,H,T,T) matrix): B x T and B/2 x 2T plan alike.
  for (Precision precision : {Precision::fp32, Precision::bf16}) {
    PlanInput a = plan_input("configs/shakespeare-char.yaml", 0, precision, ActivationCheckpointing::none), b = a;
    b.micro_batch = a.micro_batch / 2;
    b.seq_len = a.seq_len * 2;
    EXPECT_EQ(plan_memory(a).by_tag, plan_memory(b).by_tag) << to_string(precision);
  }
}

TEST(MemoryPlan, LargestMicroBatchIsTheLastThatFits) {
  PlanInput in = plan_input("configs/shakespeare-char.yaml", 2, Precision::fp32, ActivationCheckpointing::none);
  const int64_t budget = 256ll << 20;
  const int64_t mb = largest_micro_batch(in, budget);
  ASSERT_GT(mb, 0);
  in.micro_batch = mb;
  EXPECT_LE(plan_memory(in).total(), budget);
  in.micro_batch = mb + 1;
  EXPECT_GT(plan_memory(in).total(), budget);
  EXPECT_EQ(largest_micro_batch(in, 1 << 20), 0) << "nothing fits 1 MiB";
}

TEST(MemoryPlan, TheCommandPrintsEveryChoiceAndMarksTheConfigs) {
  auto r = testing::run_zt("plan configs/shakespeare-char.yaml --world 2 --budget 1GiB --set parallel.zero_stage=3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("max micro_batch in 1024 MiB"));
  EXPECT_THAT(r.output, HasSubstr("<- this config"));
  int rows = 0;
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);) rows += line.size() > 2 && std::isdigit(line[0]) && line[1] == ' ';
  EXPECT_EQ(rows, 4 * 3 * 2);  // stages x precisions x checkpointing
  r = testing::run_zt("plan configs/shakespeare-char.yaml --world 2 --budget lots");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("--budget 'lots'"));
}

// On a GPU the model state and activations are the CPU's; the workspace is the device kernels':
// cuBLASLt's 32 MiB, and in bf16 the largest linear's dout rounded into a compute copy (the
// head's, N x vocab x 2 bytes) where the CPU widens the MLP's pre-activation instead.
TEST(MemoryPlan, OnAGpuOnlyTheWorkspaceDiffers) {
  auto at = [](const PlanBytes& p, MemTag t) { return p.by_tag[static_cast<int>(t)]; };
  for (Precision precision : {Precision::fp32, Precision::bf16}) {
    const PlanInput cpu = plan_input("configs/test-tiny-gpt2.yaml", 0, precision, ActivationCheckpointing::none);
    PlanInput gpu = cpu;
    gpu.cuda = true;
    const PlanBytes c = plan_memory(cpu), g = plan_memory(gpu);
    for (MemTag t : {MemTag::params, MemTag::grads, MemTag::optimizer, MemTag::activations, MemTag::comm})
      EXPECT_EQ(at(c, t), at(g, t)) << to_string(precision) << " " << mem_tag_name(t);
    EXPECT_GE(at(g, MemTag::workspace) - at(c, MemTag::workspace), 30ll << 20) << to_string(precision);
  }
  PlanInput head = plan_input("configs/gpt2-124m.yaml", 0, Precision::bf16, ActivationCheckpointing::none);
  head.world = 1;
  head.cuda = true;
  const int64_t N = head.micro_batch * head.seq_len;
  EXPECT_GE(at(plan_memory(head), MemTag::workspace), (32ll << 20) + N * 50257 * 2);
}

TEST(MemoryPlan, TheCommandPlansForTheDeviceItIsGiven) {
  auto r = testing::run_zt("plan configs/test-tiny-gpt2.yaml --device cuda");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("on GPUs"));
  r = testing::run_zt("plan configs/test-tiny-gpt2.yaml --set runtime.device=cuda --device cpu");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("on CPUs"));
  r = testing::run_zt("plan configs/test-tiny-gpt2.yaml --device tpu");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("--device 'tpu': expected cpu or cuda"));
}

}  // namespace
}  // namespace zt
