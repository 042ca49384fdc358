// Gated attention and the WorkerTransformer at the model level: gradients against finite
// differences, exact causality, prefix consistency (what generation relies on), activation
// checkpointing, parameter names and counts.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "core/rng.h"
#include "model/hf_io.h"
#include "model/transformer.h"
#include "tests/support/gradcheck.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

struct Variant {
  Family family;
  bool gate;
  int64_t interval, conv_width;
  const char* name;
};

void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

ModelSpec spec_of(const Variant& v) {
  ModelSpec s;
  s.family = v.family;
  s.n_layer = 2;
  s.d_model = 16;
  s.vocab_size = 13;
  s.max_seq_len = 16;
  s.init_std = 0.3f;  // O(1) activations so finite differences are well conditioned
  if (v.family == Family::gpt2) {
    s.n_head = s.n_kv_head = 2;
    s.d_ff = 24;
    s.tie_embeddings = true;
  } else {
    s.n_head = 4;
    s.n_kv_head = 2;
    s.d_ff = 20;
    s.tie_embeddings = false;
  }
  s.attn_bias = true;
  s.attn_gate = v.gate;
  s.worker_interval = v.interval;
  s.worker_conv_width = v.conv_width;
  return s;
}

Tensor random_tokens(int64_t B, int64_t T, int64_t V, uint64_t stream) {
  Tensor t = Tensor::empty({B, T}, DType::i32);
  Rng rng(99, stream);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int32_t>()[i] = static_cast<int32_t>(rng.below(V));
  return t;
}

// Logits (T, V) of one sequence.
std::vector<float> logits_of(Transformer& model, const std::vector<int32_t>& ids) {
  const int64_t T = static_cast<int64_t>(ids.size());
  Stream s;
  s.B = 1;
  s.T = T;
  s.tokens = Tensor::empty({1, T}, DType::i32);
  std::memcpy(s.tokens.data<int32_t>(), ids.data(), ids.size() * 4);
  model.forward(s);
  return {s.logits.data<float>(), s.logits.data<float>() + s.logits.numel()};
}

const Variant kVariants[] = {
    {Family::gpt2, true, 0, 0, "gpt2_gate"},
    {Family::llama, true, 0, 0, "llama_gate"},
    {Family::gpt2, false, 4, 4, "gpt2_workers"},
    {Family::llama, false, 3, 2, "llama_workers"},
    {Family::gpt2, true, 3, 5, "gpt2_workers_gate"},
    {Family::llama, true, 4, 4, "llama_workers_gate"},
};

class Variants : public ::testing::TestWithParam<Variant> {};

// T = 11 is no multiple of 3 or 4: trailing non-worker rows, as in generation.
TEST_P(Variants, GradientsMatchFiniteDifferencesForEveryUnit) {
  const ModelSpec spec = spec_of(GetParam());
  LocalModel local(spec);
  const int64_t B = 2, T = 11;
  Stream s;
  s.B = B;
  s.T = T;
  s.tokens = random_tokens(B, T, spec.vocab_size, 1);
  s.targets = random_tokens(B, T, spec.vocab_size, 2);
  s.grad_scale = 1.f / static_cast<float>(B * T);
  s.need_backward = true;
  local.zero_grads();
  local.model.forward(s);
  local.model.backward(s);
  auto loss = [&]() {
    Stream e;
    e.B = B;
    e.T = T;
    e.tokens = s.tokens;
    e.targets = s.targets;
    local.model.forward(e);
    return e.loss_sum / static_cast<double>(B * T);
  };
  testing::GradCheckOptions opt;
  opt.step = 2e-3;
  opt.atol = 2e-4;
  opt.max_checks = 96;
  auto units = local.model.units();
  for (size_t u = 0; u < units.size(); ++u)
    testing::expect_grad_close(loss, local.params[u], local.grads[u], units[u]->name(), opt);
  // Every parameter of the new layers gets a gradient (a forgotten backward leaves zeros).
  for (size_t u = 1; u + 1 < units.size(); ++u)
    for (size_t i = 0; i < units[u]->params().size(); ++i) {
      const ParamSpec& p = units[u]->params()[i];
      if (p.name.find("gate") == std::string::npos && p.name.find("mix") == std::string::npos) continue;
      if (p.init == ParamInit::ones) continue;  // norm weights: covered by the check above
      EXPECT_GT(sum_squares(units[u]->grad(static_cast<int>(i))), 0.0) << p.name;
    }
}

// Perturbing token t changes no logit before t, bitwise, and does change logits at t and at
// the last worker (through the conv and the workers' attention).
TEST_P(Variants, NoPositionDependsOnALaterToken) {
  const ModelSpec spec = spec_of(GetParam());
  LocalModel local(spec);
  const int64_t T = 16;
  std::vector<int32_t> ids(T);
  Rng rng(7, 3);
  for (auto& id : ids) id = static_cast<int32_t>(rng.below(spec.vocab_size));
  const std::vector<float> base = logits_of(local.model, ids);
  const int64_t V = spec.vocab_size;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<int32_t> changed = ids;
    changed[t] = (changed[t] + 1) % static_cast<int32_t>(V);
    const std::vector<float> got = logits_of(local.model, changed);
    EXPECT_EQ(0, std::memcmp(got.data(), base.data(), t * V * 4)) << "a logit before " << t << " moved";
    auto row_differs = [&](int64_t r) { return std::memcmp(got.data() + r * V, base.data() + r * V, V * 4) != 0; };
    EXPECT_TRUE(row_differs(t)) << t;
    // The last worker (the last row without workers) sees every earlier token within the two
    // layers' reach: conv taps, then attention over workers.
    const int64_t k = spec.worker_interval, last = spec.workers() ? T / k * k - 1 : T - 1;
    if (t <= last) {
      EXPECT_TRUE(row_differs(last)) << t;
    }
  }
}

// Generation runs the model on every prefix length, most not ending on a worker (and the
// first k-1 with no worker at all): each prefix's logits are the full sequence's first rows.
TEST_P(Variants, EveryPrefixGivesTheSameLogitsAsTheFullSequence) {
  const ModelSpec spec = spec_of(GetParam());
  LocalModel local(spec);
  const int64_t T = 16, V = spec.vocab_size;
  std::vector<int32_t> ids(T);
  Rng rng(8, 3);
  for (auto& id : ids) id = static_cast<int32_t>(rng.below(V));
  const std::vector<float> full = logits_of(local.model, ids);
  for (int64_t n = 1; n < T; ++n) {
    const std::vector<float> got = logits_of(local.model, std::vector<int32_t>(ids.begin(), ids.begin() + n));
    for (int64_t i = 0; i < n * V; ++i) ASSERT_NEAR(got[i], full[i], 1e-4) << "prefix " << n << " element " << i;
  }
}

// Recomputing a checkpointed block from its input gives bitwise the same gradients.
TEST_P(Variants, CheckpointedBlocksGiveBitwiseTheSameGradients) {
  const ModelSpec spec = spec_of(GetParam());
  auto run = [&](const std::vector<bool>& layers) {
    LocalModel local(spec);
    local.model.set_checkpointed_blocks(layers);
    for (uint64_t mb = 0; mb < 2; ++mb) {
      Stream s;
      s.B = 2;
      s.T = 12;
      s.tokens = random_tokens(2, 12, spec.vocab_size, 10 + mb);
      s.targets = random_tokens(2, 12, spec.vocab_size, 20 + mb);
      s.grad_scale = 1.f / 48;
      s.need_backward = true;
      local.model.forward(s);
      local.model.backward(s);
    }
    std::vector<std::vector<float>> g;
    for (const Tensor& t : local.grads) g.emplace_back(t.data<float>(), t.data<float>() + t.numel());
    return g;
  };
  const auto plain = run({false, false});
  EXPECT_EQ(run({true, true}), plain);
  EXPECT_EQ(run({false, true}), plain);
}

// Export writes every new tensor under its Hugging Face style name and import reads it back.
TEST_P(Variants, SafetensorsRoundTrip) {
  const ModelSpec spec = spec_of(GetParam());
  LocalModel a(spec);
  ModelSpec other = spec;
  other.seed = 4242;
  LocalModel b(other);
  testing::TempDir tmp;
  const std::string path = (tmp.path() / "m.safetensors").string();
  save_hf_safetensors(a.model, path, {});
  load_hf_safetensors(b.model, path);
  for (size_t u = 0; u < a.params.size(); ++u)
    EXPECT_EQ(0, std::memcmp(a.params[u].raw(), b.params[u].raw(), a.params[u].nbytes())) << u;
}

INSTANTIATE_TEST_SUITE_P(Models, Variants, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return std::string(info.param.name); });

std::vector<std::string> block_names(const Transformer& m) {
  std::vector<std::string> out;
  for (const ParamSpec& p : m.units()[1]->params()) out.push_back(p.name);
  return out;
}

bool has(const std::vector<std::string>& names, const std::string& n) {
  return std::find(names.begin(), names.end(), n) != names.end();
}

TEST(WorkerModel, NamesShapesAndCountsOfTheNewParameters) {
  const int64_t C = 16, L = 2;
  {
    const ModelSpec base = spec_of({Family::gpt2, false, 0, 0, ""});
    const ModelSpec both = spec_of({Family::gpt2, true, 4, 5, ""});
    LocalModel m(both);
    const auto names = block_names(m.model);
    for (const char* n : {"transformer.h.0.ln_mix.weight", "transformer.h.0.ln_mix.bias", "transformer.h.0.mix.conv.weight",
                          "transformer.h.0.mix.conv.bias", "transformer.h.0.attn.c_gate.weight",
                          "transformer.h.0.attn.c_gate.bias"})
      EXPECT_TRUE(has(names, n)) << n;
    for (const ParamSpec& p : m.model.units()[1]->params()) {
      if (p.name == "transformer.h.0.mix.conv.weight") {
        EXPECT_EQ(p.shape, (Shape{C, 1, 5}));
      }
      // HF GPT-2 stores its linears as Conv1D ([in, out]); the gate follows c_attn.
      if (p.name == "transformer.h.0.attn.c_gate.weight") {
        EXPECT_TRUE(hf_transposed(Family::gpt2, p));
      }
    }
    // gate C*C + C, mixer 2C (norm) + 5C + C (conv), per layer
    EXPECT_EQ(m.model.num_params() - Transformer(base).num_params(), L * (C * C + C + 2 * C + 5 * C + C));
  }
  {
    const ModelSpec base = spec_of({Family::llama, false, 0, 0, ""});
    const ModelSpec both = spec_of({Family::llama, true, 4, 3, ""});
    Transformer m(both);
    const auto names = block_names(m);
    for (const char* n : {"model.layers.0.mixer_layernorm.weight", "model.layers.0.mixer.conv.weight",
                          "model.layers.0.self_attn.gate_proj.weight"})
      EXPECT_TRUE(has(names, n)) << n;
    EXPECT_FALSE(has(names, "model.layers.0.self_attn.gate_proj.bias"));
    EXPECT_FALSE(has(names, "model.layers.0.mixer.conv.bias"));
    // gate (H*D = C) x C, mixer norm C + conv 3C, per layer
    EXPECT_EQ(m.num_params() - Transformer(base).num_params(), L * (C * C + C + 3 * C));
  }
}

// With workers every k, a block's attention and MLP FLOPs shrink k-fold, attention's twice
// over (k times fewer queries, each over k times fewer keys).
TEST(WorkerModel, TrainFlopsCountTheWorkersOnly) {
  ModelSpec s = spec_of({Family::gpt2, true, 0, 0, ""});
  const double dense = s.train_flops_per_token(16);
  s.worker_interval = 4;
  s.worker_conv_width = 4;
  const double sparse = s.train_flops_per_token(16);
  EXPECT_LT(sparse, dense);
  const double head = 6.0 * s.vocab_size * s.d_model;
  EXPECT_GT(sparse - head, (dense - head) / 16);
  EXPECT_LT(sparse - head, (dense - head) / 4 + 6.0 * s.n_layer * s.d_model * 4 + 1);
}

}  // namespace
}  // namespace zt
