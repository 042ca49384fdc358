// Whole-model gradients against finite differences, for a tiny model of each family.
#include <gtest/gtest.h>

#include "core/rng.h"
#include "model/transformer.h"
#include "tests/support/gradcheck.h"

namespace zt {
namespace {

ModelSpec tiny_spec(Family family) {
  ModelSpec s;
  s.family = family;
  s.n_layer = 2;
  s.d_model = 16;
  s.vocab_size = 13;
  s.max_seq_len = 8;
  s.init_std = 0.3f;  // O(1) activations so finite differences are well conditioned
  if (family == Family::gpt2) {
    s.n_head = s.n_kv_head = 2;
    s.d_ff = 24;
    s.tie_embeddings = true;
    s.attn_bias = true;
  } else {
    s.n_head = 4;
    s.n_kv_head = 2;
    s.d_ff = 20;
    s.tie_embeddings = false;
    s.attn_bias = true;
  }
  return s;
}

Tensor random_tokens(int64_t B, int64_t T, int64_t V, uint64_t stream) {
  Tensor t = Tensor::empty({B, T}, DType::i32);
  Rng rng(99, stream);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int32_t>()[i] = static_cast<int32_t>(rng.below(V));
  return t;
}

class ModelGradients : public ::testing::TestWithParam<Family> {};

TEST_P(ModelGradients, MatchFiniteDifferencesForEveryUnit) {
  const ModelSpec spec = tiny_spec(GetParam());
  LocalModel local(spec);
  const int64_t B = 2, T = 5;
  Stream s;
  s.B = B;
  s.T = T;
  s.tokens = random_tokens(B, T, spec.vocab_size, 1);
  s.targets = random_tokens(B, T, spec.vocab_size, 2);
  s.grad_scale = 1.f / static_cast<float>(B * T);  // mean loss
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
  // Float forward passes: step 2e-3 balances truncation error (~step^2) against rounding
  // noise in the loss (~1e-7 |loss| / step); both stay well under atol.
  opt.step = 2e-3;
  opt.atol = 2e-4;
  opt.max_checks = 64;
  auto units = local.model.units();
  for (size_t u = 0; u < units.size(); ++u)
    testing::expect_grad_close(loss, local.params[u], local.grads[u], units[u]->name(), opt);
}

INSTANTIATE_TEST_SUITE_P(Families, ModelGradients, ::testing::Values(Family::gpt2, Family::llama),
                         [](const auto& info) { return std::string(family_name(info.param)); });

TEST(Model, FamiliesUseHuggingFaceNames) {
  LocalModel gpt2(tiny_spec(Family::gpt2));
  auto u = gpt2.model.units();
  EXPECT_EQ(u[0]->params()[0].name, "transformer.wte.weight");
  EXPECT_EQ(u[0]->params()[1].name, "transformer.wpe.weight");
  EXPECT_EQ(u[1]->params()[2].name, "transformer.h.0.attn.c_attn.weight");
  EXPECT_EQ(u.back()->params().size(), 2u);  // ln_f only: the head is tied to wte

  LocalModel llama(tiny_spec(Family::llama));
  auto v = llama.model.units();
  EXPECT_EQ(v[0]->params()[0].name, "model.embed_tokens.weight");
  EXPECT_EQ(v[2]->params()[1].name, "model.layers.1.self_attn.q_proj.weight");
  EXPECT_EQ(v[2]->params()[1].shape, (Shape{16, 16}));
  EXPECT_EQ(v[2]->params()[2].shape, (Shape{8, 16}));  // k_proj: 2 kv heads of 4
  EXPECT_EQ(v.back()->params().back().name, "lm_head.weight");
}

TEST(Model, InitIsSeededByNameAndScalesResidualProjections) {
  ModelSpec spec = tiny_spec(Family::gpt2);
  spec.init_std = 0.02f;
  LocalModel a(spec), b(spec);
  for (size_t u = 0; u < a.params.size(); ++u)
    EXPECT_EQ(0, std::memcmp(a.params[u].raw(), b.params[u].raw(), a.params[u].nbytes()));
  Unit& block = *a.model.units()[1];
  auto stddev = [](const Tensor& t) {
    double s = 0;
    for (int64_t i = 0; i < t.numel(); ++i) s += double(t.data<float>()[i]) * t.data<float>()[i];
    return std::sqrt(s / t.numel());
  };
  EXPECT_NEAR(stddev(block.param(2)), 0.02, 0.003);                // c_attn
  EXPECT_NEAR(stddev(block.param(4)), 0.02 / std::sqrt(4.0), 0.002);  // c_proj: 1/sqrt(2L)
  EXPECT_EQ(block.param(0).data<float>()[0], 1.f);                 // ln_1.weight
  EXPECT_EQ(block.param(1).data<float>()[0], 0.f);                 // ln_1.bias
}

// The tied embed unit is used by the head and the embedding; only the latter is its last use.
TEST(Model, HooksSeeEveryUnitAndTheLastUseOfTheTiedEmbedding) {
  struct Recorder : UnitHooks {
    std::vector<std::string> events;
    void pre_forward(Unit& u) override { events.push_back("f:" + u.name()); }
    void post_backward(Unit& u, bool last) override {
      events.push_back("b:" + u.name() + (last ? "!" : ""));
    }
  } rec;
  LocalModel local(tiny_spec(Family::gpt2));
  Stream s;
  s.B = 1;
  s.T = 4;
  s.tokens = random_tokens(1, 4, 13, 3);
  s.targets = random_tokens(1, 4, 13, 4);
  s.need_backward = true;
  local.model.forward(s, &rec);
  local.model.backward(s, &rec);
  std::vector<std::string> want = {"f:embed", "f:block.0", "f:block.1", "f:final", "f:embed",
                                   "b:embed",  "b:final!", "b:block.1!", "b:block.0!", "b:embed!"};
  EXPECT_EQ(rec.events, want);
}

}  // namespace
}  // namespace zt
