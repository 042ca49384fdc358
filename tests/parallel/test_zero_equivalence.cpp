// Every ZeRO stage under mpirun against one process with the same global batch: final
// weights, communication volume per step and model-state bytes per rank.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "launch/train_setup.h"
#include "model/safetensors.h"
#include "model/transformer.h"
#include "tests/support/run_dir.h"
#include "tests/support/weights.h"

namespace zt {
namespace {

using testing::read_file;
using testing::run_command;
using testing::TempDir;
using testing::last_metrics;
using testing::weight_difference;

std::string train_args(const std::string& config, const TempDir& tmp, const std::string& name) {
  return "train " + config + " --set run.out_dir=" + tmp.str() + " --set run.name=" + name +
         " --set train.steps=20 --set train.micro_batch=2 --set train.global_batch=8 --set parallel.threads=1"
         " --set train.log_every=20";
}

struct Case {
  const char* config;
  int world;
  bool zt_launch;  // else mpirun (MPI backend); zt launch uses the Gloo backend
  int port;
  const char* backend = "auto";  // staged: the same host backend behind parallel.backend: staged
  const char* extra = "";        // more --set overrides, for both runs
};

class ZeroEquivalence : public ::testing::TestWithParam<Case> {};

TEST_P(ZeroEquivalence, EveryStageMatchesOneProcess) {
  const Case c = GetParam();
  TempDir tmp;
  auto single = testing::run_zt(train_args(c.config, tmp, "single") + c.extra);
  ASSERT_EQ(single.exit_code, 0) << single.output;
  for (int stage = 0; stage <= 3; ++stage) {
    const std::string name = "stage" + std::to_string(stage);
    const std::string launcher =
        c.zt_launch ? "'" ZT_BINARY "' launch --nproc-per-node " + std::to_string(c.world) + " --master-port " +
                          std::to_string(c.port) + " -- "
                    : testing::mpirun(c.world);
    auto r = run_command(launcher + "'" ZT_BINARY "' " + train_args(c.config, tmp, name) + c.extra +
                         " --set parallel.zero_stage=" + std::to_string(stage) + " --set parallel.backend=" + c.backend);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto [total, worst] = weight_difference((tmp.path() / "single" / "model.safetensors").string(),
                                            (tmp.path() / name / "model.safetensors").string());
    // Only the order of float additions differs. Per tensor we allow 3e-4: llama's k_proj
    // bias (and the k part of gpt2's c_attn bias) has an exactly-zero true gradient (softmax ignores a shift shared by all keys), so
    // Adam turns its rounding noise into lr-sized steps.
    EXPECT_LT(total, 1e-5) << "stage " << stage;
    EXPECT_LT(worst, 3e-4) << "stage " << stage;
    const auto one = last_metrics(tmp.path() / "single"), many = last_metrics(tmp.path() / name);
    const double l1 = one["loss"], lw = many["loss"];
    EXPECT_NEAR(lw, l1, 1e-5 * l1) << "stage " << stage;
    // The last step's gradient norm: padding past a unit's end in a rank's full gradients,
    // which stages 2-3 allocate without zeroing, would reach it (as NaNs: every test run
    // poisons Tensor::empty, tests/support/poison_empty.cpp).
    const double n1 = one["grad_norm"], nw = many["grad_norm"];
    EXPECT_NEAR(nw, n1, 1e-6 * n1) << "stage " << stage;
  }
}

INSTANTIATE_TEST_SUITE_P(Ranks, ZeroEquivalence,
                         ::testing::Values(Case{"configs/test-tiny-gpt2.yaml", 2, false, 0},
                                           Case{"configs/test-tiny-llama.yaml", 2, false, 0},
                                           Case{"configs/test-tiny-gpt2.yaml", 4, false, 0},
                                           Case{"configs/test-tiny-llama.yaml", 4, false, 0},
                                           // units whose sizes 4 ranks do not divide: padded shards
                                           Case{"configs/test-tiny-gpt2.yaml", 4, false, 0, "auto", " --set model.d_model=30"},
                                           Case{"configs/test-tiny-gpt2.yaml", 2, true, 29741},
                                           Case{"configs/test-tiny-llama.yaml", 2, true, 29742},
                                           Case{"configs/test-tiny-gpt2.yaml", 4, true, 29743},
                                           Case{"configs/test-tiny-llama.yaml", 4, true, 29744},
                                           // WorkerTransformers with gated attention
                                           Case{"configs/test-tiny-worker-gpt2.yaml", 2, false, 0},
                                           Case{"configs/test-tiny-worker-llama.yaml", 4, false, 0},
                                           Case{"configs/test-tiny-worker-gpt2.yaml", 4, true, 29745},
                                           Case{"configs/test-tiny-worker-llama.yaml", 2, true, 29746},
                                           // Mixture of Experts with a shared expert
                                           Case{"configs/test-tiny-moe.yaml", 2, false, 0},
                                           Case{"configs/test-tiny-moe.yaml", 2, true, 29747},
                                           // parallel.backend: staged (host tensors pass through to MPI / Gloo)
                                           Case{"configs/test-tiny-gpt2.yaml", 2, false, 0, "staged"},
                                           Case{"configs/test-tiny-llama.yaml", 2, true, 29768, "staged"}),
                         [](const auto& info) {
                           return std::string(std::strstr(info.param.config, "worker") ? "worker_"
                                              : std::strstr(info.param.config, "moe")  ? "moe_"
                                                                                       : "") +
                                  std::string(std::strstr(info.param.config, "gpt2") ? "gpt2" : "llama") + "_world" +
                                  std::to_string(info.param.world) + (info.param.zt_launch ? "_zt_launch" : "_mpirun") +
                                  (std::string(info.param.backend) == "auto" ? "" : std::string("_") + info.param.backend) +
                                  (*info.param.extra ? "_padded" : "");
                         });

// One micro-batch per rank per step, so the per-step volumes are the textbook ones:
// stages 0-2 send 2 Psi (W-1)/W per rank (Psi = parameter bytes). Stage 3 sends Psi (W-1)/W
// for each of forward's all-gathers and the reduce-scatter, and backward's all-gathers only
// the blocks: the final unit stays gathered from forward and the embedding's backward reads
// no parameters (3 Psi (W-1)/W in the textbook, which gathers both). Stage 3 holds a W-th of
// stage 0's model state.
TEST(ZeroVolume, CommunicationAndModelStateMatchTheory) {
  TempDir tmp;
  const int W = 2, steps = 4;
  nlohmann::json m[4];
  for (int stage = 0; stage <= 3; ++stage) {
    const std::string name = std::string("v") + std::to_string(stage);
    auto r = run_command(testing::mpirun(W) + "'" ZT_BINARY "' train configs/test-tiny-llama.yaml --set run.out_dir=" +
                         tmp.str() + " --set run.name=" + name + " --set train.steps=" + std::to_string(steps) +
                         " --set train.micro_batch=2 --set train.global_batch=4 --set parallel.threads=1 --set train.log_every=100"
                         " --set parallel.zero_stage=" + std::to_string(stage));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    m[stage] = last_metrics(tmp.path() / name);
  }
  const double psi = m[0]["model_state_bytes"]["params"].get<double>();  // padded fp32 parameter bytes
  Transformer model(model_spec(load_config((tmp.path() / "v3" / "config.yaml").string(), {})));  // vocab resolved
  double psi_blocks = 0;
  for (Unit* u : model.units())
    if (u->name().starts_with("block.")) psi_blocks += static_cast<double>((u->numel() + W - 1) / W * W * 4);
  ASSERT_GT(psi_blocks, 0);
  ASSERT_LT(psi_blocks, psi);
  for (int stage = 0; stage <= 3; ++stage) {
    double bytes = 0;
    for (auto& [op, b] : m[stage]["comm_bytes_sent"].items()) bytes += b.get<double>();
    const double per_step = bytes / steps;
    const double expected = (stage == 3 ? 2 * psi + psi_blocks : 2.0 * psi) * (W - 1) / W;
    EXPECT_NEAR(per_step, expected, 0.01 * expected) << "stage " << stage;
  }
  auto total = [](const nlohmann::json& j) {
    auto& s = j["model_state_bytes"];
    return s["params"].get<double>() + s["grads"].get<double>() + s["optimizer"].get<double>();
  };
  EXPECT_NEAR(total(m[3]), total(m[0]) / W, 1e-9 * total(m[0]));
  EXPECT_NEAR(m[1]["model_state_bytes"]["optimizer"].get<double>(), m[0]["model_state_bytes"]["optimizer"].get<double>() / W, 1);
  EXPECT_LT(m[2]["model_state_bytes"]["grads"].get<double>(), m[1]["model_state_bytes"]["grads"].get<double>());
}

// Stage 0 buckets: one all-reduce per bucket per step (plus one for the logged loss). The
// tiny model fits one 25 MB bucket; bucket_mb = 0 gives one bucket per unit. Same bytes.
TEST(ZeroVolume, StageZeroAllReducesInBuckets) {
  TempDir tmp;
  const int steps = 3, units = 4;  // embed, 2 blocks, final
  nlohmann::json m[2];
  for (int per_unit = 0; per_unit < 2; ++per_unit) {
    const std::string name = std::string("b") + std::to_string(per_unit);
    auto r = run_command(testing::mpirun(2) + "'" ZT_BINARY "' train configs/test-tiny-llama.yaml --set run.out_dir=" + tmp.str() +
                         " --set run.name=" + name + " --set train.steps=" + std::to_string(steps) +
                         " --set train.micro_batch=2 --set train.global_batch=4 --set parallel.threads=1 --set train.log_every=100" +
                         (per_unit ? " --set parallel.bucket_mb=0" : ""));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    m[per_unit] = last_metrics(tmp.path() / name);
  }
  EXPECT_EQ(m[0]["comm_calls"]["all_reduce"].get<int>(), steps * (1 + 1));
  EXPECT_EQ(m[1]["comm_calls"]["all_reduce"].get<int>(), steps * (units + 1));
  EXPECT_EQ(m[0]["comm_bytes_sent"]["all_reduce"], m[1]["comm_bytes_sent"]["all_reduce"]);
  EXPECT_EQ(m[0]["ranks"].size(), 2u);
}

}  // namespace
}  // namespace zt
