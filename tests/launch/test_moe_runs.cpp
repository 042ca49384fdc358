// Mixture of Experts through the whole runtime: a stop and a resume at another world size,
// bf16, activation checkpointing at stage 3 with the router and expert spans in the profile,
// the expert load and aux loss in metrics.jsonl, the progress line and `zt report`, `zt
// plan`'s total and active parameters, and config errors that name the key. (ZeRO stage
// equivalence runs in tests/parallel/test_zero_equivalence.cpp with this config.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>

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

const char* kMoe = "configs/test-tiny-moe.yaml";

std::string train(const TempDir& tmp, const std::string& name, const std::string& extra) {
  return "'" ZT_BINARY "' train " + std::string(kMoe) + " --set run.out_dir=" + tmp.str() + " --set run.name=" + name +
         " --set train.micro_batch=2 --set parallel.threads=1 " + extra;
}

// 2 ranks stopped by SIGTERM at step 10 and resumed in one process end where the
// uninterrupted run ends.
TEST(MoeRuns, StoppedAndResumedAtAnotherWorldSizeMatchesTheUninterruptedRun) {
  TempDir tmp;
  const std::string common = "--set train.steps=20 --set train.global_batch=4 --set checkpoint.every=10";
  auto r = run_command(testing::mpirun(2) + train(tmp, "reference", common + " --set parallel.zero_stage=2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command("ZT_TEST_FAULT=sigterm@10@1 " + testing::mpirun(2) + "-x ZT_TEST_FAULT " +
                  train(tmp, "resumed", common + " --set parallel.zero_stage=3"));
  ASSERT_EQ(r.exit_code, 75) << r.output;
  r = run_command(train(tmp, "resumed", common));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("resumed from"));
  auto [total, worst] = testing::weight_difference((tmp.path() / "reference" / "model.safetensors").string(),
                                                   (tmp.path() / "resumed" / "model.safetensors").string());
  EXPECT_LT(total, 1e-5);
  EXPECT_LT(worst, 3e-4);
  EXPECT_EQ(last_metrics(tmp.path() / "resumed")["step"], 20);
}

// bf16 rounds matmul operands and saved activations (the router's logits come from a bf16
// GEMM too): the loss curve stays close to fp32's without being bitwise it. Twice the dense
// models' 0.03 bound: a rounding that flips a token's top-k choice changes its output
// outright, so the curves drift apart faster (worst over these 60 steps: 0.013 through the
// AVX-512 GEMM, 0.043 through the AVX2 one, whose summation order rounds differently).
TEST(MoeRuns, Bf16TracksTheFp32LossCurve) {
  TempDir tmp;
  const std::string common = "--set train.steps=60 --set train.log_every=10 --set optim.lr=3e-3 --set train.global_batch=4";
  auto r = run_command("OMP_NUM_THREADS=1 " + train(tmp, "fp32", common));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command("OMP_NUM_THREADS=1 " + train(tmp, "bf16", common + " --set precision.compute=bf16"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto ref = testing::metrics_by_step(tmp.path() / "fp32"), got = testing::metrics_by_step(tmp.path() / "bf16");
  ASSERT_EQ(got.size(), ref.size());
  double worst = 0;
  for (const auto& [step, m] : ref) worst = std::max(worst, std::abs(got.at(step)["loss"].get<double>() - m["loss"].get<double>()));
  EXPECT_LT(worst, 0.06);
  EXPECT_GT(worst, 0.0);
  EXPECT_LT(got.at(60)["loss"].get<double>(), ref.at(10)["loss"].get<double>()) << "bf16 did not learn";
}

// Stage 3 on 2 ranks with every block checkpointed: the routing is recomputed identically, so
// the weights are bitwise those without checkpointing; the profile shows the MoE spans.
TEST(MoeRuns, CheckpointedAtStageThreeIsBitwiseAndTraced) {
  TempDir tmp;
  const std::string common =
      "--set train.steps=6 --set train.global_batch=8 --set parallel.zero_stage=3 --set profile.enabled=true"
      " --set profile.start_step=2 --set profile.steps=2";
  auto r = run_command(testing::mpirun(2) + train(tmp, "plain", common));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command(testing::mpirun(2) + train(tmp, "ckpt", common + " --set memory.activation_checkpointing=all"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  SafetensorsFile a = SafetensorsFile::open((tmp.path() / "plain" / "model.safetensors").string());
  SafetensorsFile b = SafetensorsFile::open((tmp.path() / "ckpt" / "model.safetensors").string());
  EXPECT_EQ(a.names(), b.names());
  for (const auto& name : a.names()) {
    Tensor x = a.get(name), y = b.get(name);
    EXPECT_EQ(0, std::memcmp(x.data<float>(), y.data<float>(), x.numel() * 4)) << name;
  }
  const auto trace = nlohmann::json::parse(testing::read_file(tmp.path() / "ckpt" / "trace" / "rank-00001.trace.json"));
  std::map<std::string, int> spans;
  for (const auto& e : trace["traceEvents"]) spans[e.value("cat", "") + "/" + e.value("name", "")]++;
  // 2 micro-batches x 2 steps per block; with 2 blocks the MoE forward spans run 8 times in
  // the forwards and 8 more inside the recomputes.
  EXPECT_EQ(spans["recompute/block.1"], 4);
  for (const char* n : {"moe.router", "moe.experts", "moe.shared"}) {
    EXPECT_EQ(spans[std::string("forward/") + n], 16) << n;
    EXPECT_EQ(spans[std::string("backward/") + n], 8) << n;
  }
}

// Every logged step records the aux loss and each MoE layer's routed tokens per expert, which
// add up to the step's tokens x top_k; the progress line and `zt report` show them.
TEST(MoeRuns, MetricsProgressLineAndReportShowTheExpertLoad) {
  TempDir tmp;
  auto r = run_command(train(tmp, "run", "--set train.steps=10 --set train.log_every=5 --set train.global_batch=4"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("| aux 0."));
  EXPECT_THAT(r.output, HasSubstr("| load min/max "));
  const auto records = testing::metrics_by_step(tmp.path() / "run");
  ASSERT_EQ(records.size(), 3u);  // steps 1, 5, 10
  for (const auto& [step, m] : records) {
    const double aux = m["aux_loss"];
    EXPECT_GT(aux, 0.05) << step;  // 0.1 x (E sum f P), about 1 near balance
    EXPECT_LT(aux, 0.4) << step;
    ASSERT_EQ(m["expert_tokens"].size(), 2u);
    for (size_t l = 0; l < 2; ++l) {
      const auto tokens = m["expert_tokens"][l].get<std::vector<int64_t>>();
      ASSERT_EQ(tokens.size(), 4u);
      EXPECT_EQ(std::accumulate(tokens.begin(), tokens.end(), int64_t{0}), 4 * 16 * 2) << step;
      const double ratio = m["expert_load_ratio"][l];
      EXPECT_NEAR(ratio, static_cast<double>(*std::min_element(tokens.begin(), tokens.end())) /
                             *std::max_element(tokens.begin(), tokens.end()), 1e-12);
    }
  }
  r = run_zt("report " + (tmp.path() / "run").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("7 plots"));
  const std::string html = testing::read_file(tmp.path() / "run" / "report.html");
  EXPECT_THAT(html, HasSubstr("<figure id=\"moe\""));
  EXPECT_THAT(html, HasSubstr("MoE layer 1 min/max load"));
  EXPECT_THAT(html, HasSubstr("layer 1 expert 3"));
}

TEST(MoeRuns, PlanCountsTotalAndActiveParameters) {
  auto plan = [](const std::string& extra) {
    auto p = run_zt(std::string("plan ") + kMoe + " --world 2 " + extra);
    EXPECT_EQ(p.exit_code, 0) << p.output;
    return p.output;
  };
  const std::string moe = plan(""), dense = plan("--set model.moe.n_experts=0");
  auto count = [](const std::string& out, const std::string& what) {
    const auto at = out.find(what);
    const auto from = out.rfind(' ', at - 1);
    return std::stoll(out.substr(from + 1, at - from - 1));
  };
  const int64_t C = 32, F = 48, E = 4;
  // Per layer: E experts, a shared one, router E x C and the shared gate C, instead of one MLP.
  EXPECT_EQ(count(moe, " params,") - count(dense, " params,"), 2 * (E * 3 * C * F + E * C + C));
  // Active per token: the top 2 of the 4 experts.
  EXPECT_THAT(moe, HasSubstr("MoE in 2 of 2 blocks: 4 experts, top 2, 1 shared"));
  EXPECT_EQ(count(moe, " params,") - count(moe, " active params"), 2 * 2 * 3 * C * F);
}

TEST(MoeRuns, BadMoeKeysFailWithTheirNameAndWriteNothing) {
  TempDir tmp;
  const std::string out = " --set run.out_dir=" + tmp.str() + "/runs";
  struct Case {
    std::string args, message;
  } cases[] = {
      {"train configs/test-tiny-gpt2.yaml --set model.moe.n_experts=4", "model.moe.n_experts"},
      {std::string("train ") + kMoe + " --set model.moe.top_k=5", "model.moe.top_k (5) must be <= model.moe.n_experts (4)"},
      {std::string("train ") + kMoe + " --set model.moe.every_n_layers=0", "model.moe.every_n_layers"},
      {std::string("train ") + kMoe + " --set model.moe.experts=4", "model.moe.experts"},
      {std::string("train ") + kMoe + " --set model.worker_interval=4", "model.worker_interval"},
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
