// Mixed precision end to end: bf16 and fp16 runs track the fp32 loss curve, so does bf16
// gradient reduction at every ZeRO stage with half the bytes, an injected fp16 overflow skips
// exactly that step on every rank and the dynamic loss scale halves, grows back, and survives
// a checkpoint; precision config errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/allocator.h"
#include "core/config.h"
#include "core/error.h"
#include "launch/train_data.h"
#include "launch/train_setup.h"
#include "parallel/checkpoint_format.h"
#include "tests/support/checkpoint_edit.h"
#include "tests/support/run_dir.h"
#include "tests/support/weights.h"

namespace zt {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::metrics_by_step;
using testing::run_command;
using testing::TempDir;

const std::string kMpirun2 = testing::mpirun(2);

std::string tiny(const TempDir& tmp, const std::string& name, const std::string& extra) {
  return "'" ZT_BINARY "' train configs/test-tiny-gpt2.yaml --set run.out_dir=" + tmp.str() + " --set run.name=" + name +
         " --set train.steps=200 --set train.log_every=10 --set optim.lr=3e-3 --set train.micro_batch=4"
         " --set train.global_batch=8 --set parallel.threads=1 " + extra;
}

// bf16 keeps 8 significant bits (relative rounding 2^-9 = 0.2%), fp16 11 bits, of each
// matmul operand; everything else is fp32, so the runs differ from fp32 only by that
// rounding, which moves each logged loss by a few 1e-3 over 200 steps here. 0.03 (about 1%
// of the loss) leaves room for that drift while anything structurally wrong (stale or
// mis-laid-out compute weights, wrong unscaling) moves the loss by tenths at once.
TEST(MixedPrecision, Bf16AndFp16TrackTheFp32LossCurve) {
  TempDir tmp;
  auto r = run_command("OMP_NUM_THREADS=1 " + tiny(tmp, "fp32", ""));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto ref = metrics_by_step(tmp.path() / "fp32");
  struct Case {
    std::string name, command;
  };
  const std::vector<Case> cases = {
      {"bf16", "OMP_NUM_THREADS=1 " + tiny(tmp, "bf16", "--set precision.compute=bf16")},
      {"fp16", "OMP_NUM_THREADS=1 " + tiny(tmp, "fp16", "--set precision.compute=fp16")},
      // Stage 3 on 2 ranks: the bf16 copy is made from each freshly gathered unit.
      {"bf16-stage3", kMpirun2 + tiny(tmp, "bf16-stage3", "--set precision.compute=bf16 --set parallel.zero_stage=3")}};
  for (const Case& c : cases) {
    r = run_command(c.command);
    ASSERT_EQ(r.exit_code, 0) << c.name << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr("precision: " + c.name.substr(0, 4) + " matmuls"));
    const auto got = metrics_by_step(tmp.path() / c.name);
    ASSERT_EQ(got.size(), ref.size()) << c.name;
    double worst = 0;
    for (const auto& [step, m] : ref) worst = std::max(worst, std::abs(got.at(step)["loss"].get<double>() - m["loss"].get<double>()));
    EXPECT_LT(worst, 0.03) << c.name;
    EXPECT_GT(worst, 0.0) << c.name << " is bitwise fp32: the low precision path did not run";
    EXPECT_LT(got.at(200)["loss"].get<double>(), 3.0) << c.name << " did not learn";
    EXPECT_EQ(got.at(200)["skipped_steps"], 0) << c.name;
  }
}

// precision.reduce: bf16 rounds each rank's gradients to bf16 before they are summed and the
// sum again at each hop (relative 2^-9 per rounding, as for the bf16 matmul operands above),
// so the same 0.03 bound holds. Every stage takes its own path (bucketed all-reduce at 0,
// reduce-scatter once per step at 1, per micro-batch with accumulation into the shard at
// 2-3; global_batch 16 over micro_batch 4 x 2 ranks gives two micro-batches per step), and
// the gradient collectives must send half the bytes they send in fp32.
TEST(MixedPrecision, Bf16GradientReductionTracksFp32AtEveryStageWithHalfTheBytes) {
  TempDir tmp;
  auto run = [&](int stage, const std::string& reduce) {
    const std::string name = std::string("s") + std::to_string(stage) + reduce;
    auto r = run_command(kMpirun2 + tiny(tmp, name,
                                         "--set train.global_batch=16 --set parallel.zero_stage=" + std::to_string(stage) +
                                             " --set precision.reduce=" + reduce));
    EXPECT_EQ(r.exit_code, 0) << name << "\n" << r.output;
    return metrics_by_step(tmp.path() / name);
  };
  const auto ref = run(0, "fp32");
  ASSERT_TRUE(ref.count(200));
  for (int stage = 0; stage <= 3; ++stage) {
    SCOPED_TRACE("stage " + std::to_string(stage));
    const auto fp32 = stage == 0 ? ref : run(stage, "fp32");
    const auto bf16 = run(stage, "bf16");
    ASSERT_EQ(bf16.size(), ref.size());
    double worst = 0;
    for (const auto& [step, m] : ref) worst = std::max(worst, std::abs(bf16.at(step)["loss"].get<double>() - m["loss"].get<double>()));
    EXPECT_LT(worst, 0.03);
    EXPECT_GT(worst, 0.0) << "bitwise fp32: the bf16 reduction did not run";
    EXPECT_LT(bf16.at(200)["loss"].get<double>(), 3.0) << "did not learn";
    const char* op = stage == 0 ? "all_reduce" : "reduce_scatter";
    const double bytes_fp32 = fp32.at(200)["comm_bytes_sent"][op].get<double>();
    const double bytes_bf16 = bf16.at(200)["comm_bytes_sent"][op].get<double>();
    // Stage 0 all-reduces a few small f32 scalars too (the loss), hence the margin there.
    EXPECT_NEAR(bytes_bf16 / bytes_fp32, 0.5, stage == 0 ? 0.01 : 0.0) << op << " bytes";
  }
}

// With compute: bf16 every activation a block saves off the residual stream, and the final
// norm's output, takes 2 bytes instead of 4: the run's activation bytes drop by exactly that,
// each buffer rounded as the allocator rounds it (llama: RoPE, GQA and SwiGLU buffers).
TEST(MixedPrecision, Bf16StoresTheSavedActivationsInHalfTheBytes) {
  TempDir tmp;
  const std::string config = ZT_SOURCE_DIR "/configs/test-tiny-llama.yaml", data = ZT_SOURCE_DIR "/data/tinyshakespeare.txt";
  auto activation_peak = [&](const std::string& precision) {
    auto r = run_command("OMP_NUM_THREADS=1 '" ZT_BINARY "' train " + config + " --set run.out_dir=" + tmp.str() +
                         " --set run.name=" + precision + " --set train.steps=2 --set train.log_every=1"
                         " --set parallel.threads=1 --set data.train=" + data + " --set precision.compute=" + precision);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return metrics_by_step(tmp.path() / precision).at(2)["memory"]["peak"]["activations"].get<int64_t>();
  };
  Config cfg = load_config(config, {"data.train=" + data});
  cfg.model.vocab_size = plan_data(cfg.data, cfg.model.vocab_size).vocab_size;
  const ModelSpec m = model_spec(cfg);
  const int64_t B = cfg.train.micro_batch, T = cfg.data.seq_len, N = B * T, D = m.head_dim();
  const int64_t qkv = (m.n_head + 2 * m.n_kv_head) * D, q_out = m.n_head * D;
  auto saved = [](int64_t elems) {
    return static_cast<int64_t>(CpuAllocator::rounded_size(elems * 4) - CpuAllocator::rounded_size(elems * 2));
  };
  // ln1, qkv, attention output, ln2, gate|up, SwiGLU output; then the final norm.
  const int64_t per_block = saved(N * m.d_model) + saved(N * qkv) + saved(N * q_out) +
                            saved(N * m.d_model) + saved(N * 2 * m.d_ff) + saved(N * m.d_ff);
  const int64_t want = m.n_layer * per_block + saved(N * m.d_model);
  EXPECT_EQ(activation_peak("fp32") - activation_peak("bf16"), want);
}

std::string fp16_run(const TempDir& tmp, const std::string& name, int steps) {
  return "'" ZT_BINARY "' train configs/test-tiny-llama.yaml --set run.out_dir=" + tmp.str() + " --set run.name=" + name +
         " --set train.steps=" + std::to_string(steps) +
         " --set train.log_every=1 --set train.micro_batch=2 --set train.global_batch=8 --set parallel.threads=1"
         " --set parallel.zero_stage=2 --set precision.compute=fp16 --set precision.initial_scale=1024"
         " --set precision.growth_interval=3 --set checkpoint.every=0 --set log.all_ranks=true";
}

TEST(MixedPrecision, AnFp16OverflowSkipsThatStepOnEveryRankHalvesTheScaleAndRecovers) {
  TempDir tmp;
  auto r = run_command("ZT_TEST_FAULT=overflow@5@1 " + kMpirun2 + "-x ZT_TEST_FAULT " + fp16_run(tmp, "run", 12));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string skipped =
      "step 5: gradients overflowed (inf/NaN) at loss scale 2048; step skipped on every rank, loss scale now 1024";
  for (int rank = 0; rank < 2; ++rank) {
    bool found = false;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);)
      found |= line.starts_with("[rank " + std::to_string(rank) + "]") && line.find(skipped) != std::string::npos;
    EXPECT_TRUE(found) << "rank " << rank << " did not skip step 5:\n" << r.output;
  }
  EXPECT_THAT(r.output, Not(HasSubstr("step 6: gradients overflowed")));
  const auto m = metrics_by_step(tmp.path() / "run");
  // 1024 for 3 clean steps, doubled; overflow at step 5 halves it; 3 clean steps double it.
  const std::vector<double> scale = {1024, 1024, 1024, 2048, 2048, 1024, 1024, 1024, 2048, 2048, 2048, 4096};
  for (int64_t step = 1; step <= 12; ++step) {
    EXPECT_EQ(m.at(step)["loss_scale"].get<double>(), scale[step - 1]) << "step " << step;
    EXPECT_EQ(m.at(step)["skipped_steps"], step < 5 ? 0 : 1) << "step " << step;
    EXPECT_TRUE(std::isfinite(m.at(step)["loss"].get<double>())) << "step " << step;
  }
  EXPECT_LT(m.at(12)["loss"].get<double>(), m.at(1)["loss"].get<double>());

  // Stopped at step 7 and resumed: the scaler continues where it was.
  r = run_command("ZT_TEST_FAULT=overflow@5@1 " + kMpirun2 + "-x ZT_TEST_FAULT " + fp16_run(tmp, "stopped", 12) +
                  " --set checkpoint.every=7");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  fs::remove_all(tmp.path() / "resumed");
  fs::create_directories(tmp.path() / "resumed");
  // A copy of the run as it was at step 7: its checkpoint and the metrics up to there.
  fs::copy(tmp.path() / "stopped" / "checkpoints", tmp.path() / "resumed" / "checkpoints", fs::copy_options::recursive);
  fs::remove_all(tmp.path() / "resumed" / "checkpoints" / "step-00000012");
  std::ofstream(tmp.path() / "resumed" / "checkpoints" / "latest") << "step-00000007\n";
  r = run_command(kMpirun2 + fp16_run(tmp, "resumed", 12));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("resumed from"));
  const auto resumed = metrics_by_step(tmp.path() / "resumed");
  for (int64_t step = 8; step <= 12; ++step) {
    EXPECT_EQ(resumed.at(step)["loss_scale"], m.at(step)["loss_scale"]) << "step " << step;
    EXPECT_EQ(resumed.at(step)["skipped_steps"], 1) << "step " << step;
    EXPECT_NEAR(resumed.at(step)["loss"].get<double>(), m.at(step)["loss"].get<double>(), 1e-5) << "step " << step;
  }

  // A hand-edited scale (the checksum fixed too) is refused, naming the file and the key.
  fs::create_directories(tmp.path() / "edited");
  fs::copy(tmp.path() / "stopped" / "checkpoints", tmp.path() / "edited" / "checkpoints", fs::copy_options::recursive);
  const fs::path ckpt = tmp.path() / "edited" / "checkpoints" / "step-00000012";
  testing::reseal_meta(ckpt, [](nlohmann::json& j) { j["state"]["loss_scaler"]["scale"] = "big"; });
  r = run_command(fp16_run(tmp, "edited", 14));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr((ckpt / kMetaFile).string() + ": state.loss_scaler.scale is \"big\", expected a finite number >= 1"));
}

// A fixed scale that overflows fp16 in every step trains nothing: after 10 skipped steps in a
// row the run fails on every rank, naming the key to change, instead of saving untrained
// weights at the end as if all were well.
TEST(MixedPrecision, StepsThatOverflowAtAFixedScaleFailTheRunAfterTen) {
  TempDir tmp;
  auto r = run_command(kMpirun2 + fp16_run(tmp, "run", 30) + " --set precision.loss_scale=1e30");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("gradients were inf/NaN in 10 steps in a row (steps 1-10) at the fixed loss scale "
                                  "1e+30 (precision.loss_scale): nothing trains; lower precision.loss_scale"));
  EXPECT_THAT(r.output, Not(HasSubstr("step 11:")));
  EXPECT_FALSE(fs::exists(tmp.path() / "run" / "model.safetensors"));
}

TEST(MixedPrecision, ConfigErrorsNameTheKey) {
  auto error_of = [](const std::string& yaml) {
    try {
      parse_config("data:\n  train: corpus.txt\n" + yaml, "t.yaml");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_THAT(error_of("precision:\n  reduce: fp16\n"), HasSubstr("precision.reduce: must be one of fp32, bf16, got 'fp16'"));
  EXPECT_EQ(error_of("precision:\n  reduce: bf16\n"), "(no error)");
  EXPECT_THAT(error_of("precision:\n  loss_scale: lots\n"), HasSubstr("precision.loss_scale must be dynamic or a positive number"));
  EXPECT_THAT(error_of("precision:\n  loss_scale: -4\n"), HasSubstr("precision.loss_scale"));
  EXPECT_THAT(error_of("precision:\n  compute: fp8\n"), HasSubstr("precision.compute"));
  EXPECT_EQ(error_of("precision:\n  compute: fp16\n  loss_scale: 128\n"), "(no error)");
}

}  // namespace
}  // namespace zt
