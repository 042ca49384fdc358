// Activation checkpointing: gradients bitwise equal to keeping every activation, peak
// activation bytes lower by exactly the saved blocks' activation sets, and end to end at
// ZeRO stage 3 (parameters gathered for the recompute) the same weights and recompute spans.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include <nlohmann/json.hpp>

#include "core/allocator.h"
#include "core/config.h"
#include "core/rng.h"
#include "launch/train_setup.h"
#include "model/safetensors.h"
#include "model/transformer.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

ModelSpec spec_of(Family family, int64_t n_layer) {
  ModelSpec s;
  s.family = family;
  s.n_layer = n_layer;
  s.d_model = 32;
  s.vocab_size = 19;
  s.max_seq_len = 16;
  if (family == Family::gpt2) {
    s.n_head = s.n_kv_head = 4;
    s.d_ff = 64;
    s.tie_embeddings = true;
    s.attn_bias = true;
  } else {
    s.n_head = 4;
    s.n_kv_head = 2;
    s.d_ff = 48;
    s.tie_embeddings = false;
    s.attn_bias = false;
  }
  return s;
}

Tensor tokens(int64_t B, int64_t T, int64_t V, uint64_t stream) {
  Tensor t = Tensor::empty({B, T}, DType::i32);
  Rng rng(5, stream);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int32_t>()[i] = static_cast<int32_t>(rng.below(V));
  return t;
}

struct Result {
  double loss = 0;
  std::vector<std::vector<float>> grads;
  int64_t activation_bytes = 0;  // peak activations allocated by the model's passes
};

// Two micro-batches of forward and backward (gradients accumulate) with `layers` checkpointed.
Result run(const ModelSpec& spec, const std::vector<bool>& layers, int64_t B = 2, int64_t T = 16) {
  CpuAllocator::instance().reset_peaks();
  const int64_t before = memory_stats().live_of(MemTag::activations);
  Result r;
  {
    LocalModel local(spec);
    local.model.set_checkpointed_blocks(layers);
    for (uint64_t mb = 0; mb < 2; ++mb) {
      Stream s;
      s.B = B;
      s.T = T;
      s.tokens = tokens(B, T, spec.vocab_size, 2 * mb);
      s.targets = tokens(B, T, spec.vocab_size, 2 * mb + 1);
      s.grad_scale = 1.f / static_cast<float>(2 * B * T);
      s.need_backward = true;
      local.model.forward(s);
      local.model.backward(s);
      r.loss += s.loss_sum;
    }
    for (const Tensor& g : local.grads) r.grads.emplace_back(g.data<float>(), g.data<float>() + g.numel());
    r.activation_bytes = memory_stats().peak_of(MemTag::activations) - before;
  }
  return r;
}

class CheckpointedBlocks : public ::testing::TestWithParam<Family> {};

TEST_P(CheckpointedBlocks, GradientsAreBitwiseThoseWithoutIt) {
  const ModelSpec spec = spec_of(GetParam(), 4);
  const Result plain = run(spec, {false, false, false, false});
  for (const std::vector<bool>& layers :
       {std::vector<bool>{true, true, true, true}, {true, false, true, false}, {false, true, false, false}}) {
    const Result ckpt = run(spec, layers);
    EXPECT_EQ(ckpt.loss, plain.loss);
    ASSERT_EQ(ckpt.grads.size(), plain.grads.size());
    for (size_t u = 0; u < plain.grads.size(); ++u)
      EXPECT_EQ(0, std::memcmp(ckpt.grads[u].data(), plain.grads[u].data(), plain.grads[u].size() * 4))
          << "unit " << u << " with layers " << ::testing::PrintToString(layers);
  }
}

// What one block keeps for backward besides its input and output (BlockActivations).
int64_t activation_set_bytes(const ModelSpec& s, int64_t B, int64_t T) {
  const int64_t N = B * T, C = s.d_model, D = s.head_dim();
  const int64_t qkv = (s.n_head + 2 * s.n_kv_head) * D, ff = s.gpt2() ? s.d_ff : 2 * s.d_ff;
  const std::vector<int64_t> numels = {N * C, N, N, N * qkv, B * s.n_head * T, N * s.n_head * D,
                                       N * C, N * C, N, N, N * ff, N * s.d_ff};
  int64_t bytes = 0;
  for (int64_t n : numels) bytes += static_cast<int64_t>(CpuAllocator::rounded_size(static_cast<size_t>(n) * 4));
  return bytes;
}

TEST_P(CheckpointedBlocks, PeakActivationBytesDropByTheSavedSets) {
  const ModelSpec spec = spec_of(GetParam(), 4);
  const int64_t set = activation_set_bytes(spec, 2, 16);
  const int64_t none = run(spec, {false, false, false, false}).activation_bytes;
  // Checkpointed blocks share one set: k of them save k - 1 sets.
  EXPECT_EQ(none - run(spec, {true, true, true, true}).activation_bytes, 3 * set);
  EXPECT_EQ(none - run(spec, {true, false, true, false}).activation_bytes, 1 * set);
  EXPECT_EQ(none - run(spec, {false, true, false, false}).activation_bytes, 0);
}

// Attention saves O(T) per sequence (its output and one log-sum-exp per query row), so what
// a pass keeps depends on the number of tokens B*T only: the same at T = 4, 8 and 16. A saved
// (B,H,T,T) probability matrix would double from one to the next.
TEST_P(CheckpointedBlocks, SavedActivationBytesDependOnTheTokenCountNotOnT) {
  const ModelSpec spec = spec_of(GetParam(), 2);
  const int64_t at_4 = run(spec, {false, false}, 4, 4).activation_bytes;
  EXPECT_EQ(run(spec, {false, false}, 2, 8).activation_bytes, at_4);
  EXPECT_EQ(run(spec, {false, false}, 1, 16).activation_bytes, at_4);
  EXPECT_EQ(activation_set_bytes(spec, 1, 16), activation_set_bytes(spec, 4, 4));
}

INSTANTIATE_TEST_SUITE_P(Families, CheckpointedBlocks, ::testing::Values(Family::gpt2, Family::llama),
                         [](const auto& info) { return info.param == Family::gpt2 ? "gpt2" : "llama"; });

TEST(ActivationCheckpointingConfig, PolicyPicksTheBlocks) {
  MemoryConfig m;
  EXPECT_EQ(checkpointed_layers(m, 3), (std::vector<bool>{false, false, false}));
  m.activation_checkpointing = ActivationCheckpointing::all;
  EXPECT_EQ(checkpointed_layers(m, 3), (std::vector<bool>{true, true, true}));
  m.activation_checkpointing = ActivationCheckpointing::every_k;
  m.checkpoint_every = 2;
  EXPECT_EQ(checkpointed_layers(m, 5), (std::vector<bool>{true, false, true, false, true}));
  EXPECT_THROW(parse_config("memory:\n  activation_checkpointing: some\n", "t.yaml"), Error);
  EXPECT_THROW(parse_config("memory:\n  checkpoint_every: 0\n", "t.yaml"), Error);
}

// Stage 3 on 2 ranks: the recompute runs with the parameters gathered for backward, the
// weights come out bitwise identical, and the profile shows recompute spans.
TEST(ActivationCheckpointingEndToEnd, StageThreeMatchesBitwiseAndTracesTheRecompute) {
  testing::TempDir tmp;
  const std::string mpirun =
      testing::mpirun(2) + "'" ZT_BINARY "' train configs/test-tiny-llama.yaml --set run.out_dir=" + tmp.str() +
      " --set train.steps=6 --set train.micro_batch=2 --set train.global_batch=8 --set parallel.threads=1"
      " --set parallel.zero_stage=3 --set profile.enabled=true --set profile.start_step=2 --set profile.steps=2";
  auto r = testing::run_command(mpirun + " --set run.name=plain");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testing::run_command(mpirun + " --set run.name=ckpt --set memory.activation_checkpointing=all");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, ::testing::HasSubstr("activation checkpointing: 2 of 2 blocks"));
  SafetensorsFile a = SafetensorsFile::open((tmp.path() / "plain" / "model.safetensors").string());
  SafetensorsFile b = SafetensorsFile::open((tmp.path() / "ckpt" / "model.safetensors").string());
  for (const auto& name : a.names()) {
    Tensor x = a.get(name), y = b.get(name);
    EXPECT_EQ(0, std::memcmp(x.data<float>(), y.data<float>(), x.numel() * 4)) << name;
  }
  for (const char* run : {"plain", "ckpt"}) {
    const auto trace = nlohmann::json::parse(testing::read_file(tmp.path() / run / "trace" / "rank-00001.trace.json"));
    int recomputes = 0;
    for (const auto& e : trace["traceEvents"]) recomputes += e.value("cat", "") == "recompute";
    EXPECT_EQ(recomputes, std::string(run) == "ckpt" ? 2 * 2 * 2 : 0) << run << ": 2 blocks x 2 micro-batches x 2 steps";
  }
}

}  // namespace
}  // namespace zt
