// Mixture of Experts: the FFN against an independent per-token reference (router, top-k,
// experts, shared expert, aux loss computed by hand), its gradients against finite
// differences with the routing held fixed, and the model level: gradients of every unit,
// activation checkpointing, thread-count independence, Hugging Face names and round trip.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/rng.h"
#include "model/hf_io.h"
#include "model/moe.h"
#include "model/transformer.h"
#include "tests/support/gradcheck.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

struct Variant {
  int64_t shared;
  bool norm_topk;
  const char* name;
};
void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

ModelSpec moe_spec(const Variant& v) {
  ModelSpec s;
  s.family = Family::llama;
  s.n_layer = 2;
  s.n_head = 4;
  s.n_kv_head = 2;
  s.d_model = 16;
  s.d_ff = 10;
  s.vocab_size = 13;
  s.max_seq_len = 16;
  s.tie_embeddings = false;
  s.attn_bias = false;
  s.init_std = 0.3f;  // O(1) activations so finite differences are well conditioned
  s.n_experts = 4;
  s.moe_top_k = 2;
  s.n_shared_experts = v.shared;
  s.norm_topk_prob = v.norm_topk;
  s.aux_loss_coef = 0.5f;
  return s;
}

// One MoE FFN over its own unit with every weight drawn from N(0, 0.3).
struct Ffn {
  explicit Ffn(const ModelSpec& spec) : unit("moe"), ffn(unit, spec, "model.layers.0.") {
    params = testing::random_tensor({unit.numel()}, 5, 0.3f);
    grads = Tensor::zeros({unit.numel()}, DType::f32);
    unit.bind(params, grads);
  }
  Tensor param(const std::string& name) const {
    for (size_t i = 0; i < unit.params().size(); ++i)
      if (unit.params()[i].name == name) return unit.param(static_cast<int>(i));
    ADD_FAILURE() << "no parameter " << name;
    return {};
  }
  Unit unit;
  MoeFfn ffn;
  MoeActivations act;
  MoeScratch scratch;
  Tensor params, grads;
};

// y = W x for W (out, in), plain loops in f64.
std::vector<double> matvec(const Tensor& w, const float* x) {
  const int64_t out = w.dim(0), in = w.dim(1);
  std::vector<double> y(out, 0.0);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) y[o] += static_cast<double>(w.data<float>()[o * in + i]) * x[i];
  return y;
}

// down (silu(gate x) * up x)
std::vector<double> swiglu_mlp(const Tensor& gate, const Tensor& up, const Tensor& down, const float* x) {
  std::vector<double> g = matvec(gate, x), u = matvec(up, x);
  std::vector<float> a(g.size());
  for (size_t i = 0; i < g.size(); ++i) a[i] = static_cast<float>(g[i] / (1 + std::exp(-g[i])) * u[i]);
  return matvec(down, a.data());
}

class MoeFfnVariants : public ::testing::TestWithParam<Variant> {};

// The forward against a per-token computation written from the definitions: softmax router,
// top-k, (renormalized) weights, experts, sigmoid-gated shared expert, and the per-sequence
// aux loss E * sum_i f_i P_i.
TEST_P(MoeFfnVariants, ForwardMatchesAPerTokenReference) {
  const ModelSpec spec = moe_spec(GetParam());
  Ffn f(spec);
  const int64_t B = 2, T = 7, N = B * T, C = spec.d_model, E = spec.n_experts, K = spec.moe_top_k;
  Tensor x = testing::random_tensor({N, C}, 6);
  f.ffn.ensure_buffers(f.act, f.scratch, N, B, DType::f32);
  Tensor y = Tensor::zeros({N, C}, DType::f32);
  const double aux = f.ffn.forward(f.act, f.scratch, x, &y, B, T);

  const bool shared = spec.n_shared_experts > 0;
  const std::string base = shared ? "model.layers.0.mlp." : "model.layers.0.block_sparse_moe.";
  double want_aux = 0;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> count(E, 0.0), mean_p(E, 0.0);
    for (int64_t t = 0; t < T; ++t) {
      const int64_t n = b * T + t;
      const float* xn = x.data<float>() + n * C;
      std::vector<double> p = matvec(f.param(base + "gate.weight"), xn);
      const double mx = *std::max_element(p.begin(), p.end());
      double z = 0;
      for (double& v : p) z += v = std::exp(v - mx);
      for (double& v : p) v /= z;
      std::vector<int> order(E);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int a, int c) { return p[a] > p[c]; });
      double top = 0;
      for (int64_t j = 0; j < K; ++j) top += p[order[j]];
      std::vector<double> want(C, 0.0);
      for (int64_t j = 0; j < K; ++j) {
        const int e = order[j];
        EXPECT_EQ(f.act.idx.data<int32_t>()[n * K + j], e) << "token " << n << " choice " << j;
        const double w = spec.norm_topk_prob ? p[e] / top : p[e];
        const std::string ex = base + "experts." + std::to_string(e) + ".";
        const auto out = shared ? swiglu_mlp(f.param(ex + "gate_proj.weight"), f.param(ex + "up_proj.weight"),
                                             f.param(ex + "down_proj.weight"), xn)
                                : swiglu_mlp(f.param(ex + "w1.weight"), f.param(ex + "w3.weight"),
                                             f.param(ex + "w2.weight"), xn);
        for (int64_t c = 0; c < C; ++c) want[c] += w * out[c];
        count[e] += 1;
      }
      if (shared) {
        const auto so = swiglu_mlp(f.param("model.layers.0.mlp.shared_expert.gate_proj.weight"),
                                   f.param("model.layers.0.mlp.shared_expert.up_proj.weight"),
                                   f.param("model.layers.0.mlp.shared_expert.down_proj.weight"), xn);
        const double g = matvec(f.param("model.layers.0.mlp.shared_expert_gate.weight"), xn)[0];
        for (int64_t c = 0; c < C; ++c) want[c] += so[c] / (1 + std::exp(-g));
      }
      for (int64_t c = 0; c < C; ++c) EXPECT_NEAR(y.data<float>()[n * C + c], want[c], 1e-5) << n << "," << c;
      for (int64_t e = 0; e < E; ++e) mean_p[e] += p[e] / T;
    }
    double seq = 0;
    for (int64_t e = 0; e < E; ++e) seq += count[e] / static_cast<double>(T * K) * mean_p[e];
    want_aux += E * seq;
  }
  EXPECT_NEAR(aux, want_aux, 1e-5);
  EXPECT_GT(want_aux, 0.0);
}

// Loss = sum(y * proj) + c * (aux summed over sequences). Gradients of every parameter (router,
// experts, shared expert and its gate) and of the input against central differences; every
// perturbed forward must route every token to the same experts, else the check is void.
TEST_P(MoeFfnVariants, GradientsMatchFiniteDifferencesWithTheRoutingFixed) {
  const ModelSpec spec = moe_spec(GetParam());
  Ffn f(spec);
  const int64_t B = 2, T = 5, N = B * T, C = spec.d_model;
  const float c = 0.7f;
  Tensor x = testing::random_tensor({N, C}, 7);
  Tensor proj = testing::random_tensor({N, C}, 8);
  f.ffn.ensure_buffers(f.act, f.scratch, N, B, DType::f32);
  Tensor y = Tensor::zeros({N, C}, DType::f32);
  f.ffn.forward(f.act, f.scratch, x, &y, B, T);
  const std::vector<int32_t> routing(f.act.idx.data<int32_t>(), f.act.idx.data<int32_t>() + f.act.idx.numel());
  Tensor dx = Tensor::zeros({N, C}, DType::f32);
  f.grads.zero_();
  f.ffn.backward(f.act, f.scratch, dx, proj, x, T, c);

  int64_t flips = 0;
  auto loss = [&]() {
    y.zero_();
    const double aux = f.ffn.forward(f.act, f.scratch, x, &y, B, T);
    flips += std::memcmp(routing.data(), f.act.idx.data<int32_t>(), routing.size() * 4) != 0;
    return testing::project(y, proj) + c * aux;
  };
  // f32 forwards: a step of 1e-2 keeps rounding noise below atol (the check below proves the
  // routing held).
  testing::GradCheckOptions opt;
  opt.step = 1e-2;
  opt.atol = 2e-4;
  opt.max_checks = 120;
  testing::expect_grad_close(loss, f.params, f.grads, "moe parameters", opt);
  Tensor router = f.unit.param(0), drouter = f.unit.grad(0);  // the router, densely
  opt.max_checks = 32;
  testing::expect_grad_close(loss, router, drouter, f.unit.params()[0].name, opt);
  testing::expect_grad_close(loss, x, dx, "moe input", opt);
  EXPECT_EQ(flips, 0) << "a perturbation changed the routing";
  // Each parameter tensor gets a gradient (a missed backward leaves zeros).
  for (size_t i = 0; i < f.unit.params().size(); ++i)
    EXPECT_GT(sum_squares(f.unit.grad(static_cast<int>(i))), 0.0) << f.unit.params()[i].name;
}

// The aux loss alone: its gradient reaches the router through P_i only.
TEST_P(MoeFfnVariants, AuxLossGradientReachesOnlyTheRouter) {
  const ModelSpec spec = moe_spec(GetParam());
  Ffn f(spec);
  const int64_t B = 2, T = 6, N = B * T, C = spec.d_model;
  Tensor x = testing::random_tensor({N, C}, 9);
  f.ffn.ensure_buffers(f.act, f.scratch, N, B, DType::f32);
  f.ffn.forward(f.act, f.scratch, x, nullptr, B, T);
  Tensor dx = Tensor::zeros({N, C}, DType::f32);
  f.grads.zero_();
  f.ffn.backward(f.act, f.scratch, dx, Tensor::zeros({N, C}, DType::f32), x, T, 1.f);
  auto loss = [&]() { return f.ffn.forward(f.act, f.scratch, x, nullptr, B, T); };
  const std::string router = spec.n_shared_experts > 0 ? "model.layers.0.mlp.gate.weight"
                                                         : "model.layers.0.block_sparse_moe.gate.weight";
  for (size_t i = 0; i < f.unit.params().size(); ++i) {
    const ParamSpec& p = f.unit.params()[i];
    if (p.name != router) {
      EXPECT_EQ(sum_squares(f.unit.grad(static_cast<int>(i))), 0.0) << p.name;
      continue;
    }
    Tensor w = f.unit.param(static_cast<int>(i));
    Tensor g = f.unit.grad(static_cast<int>(i)).clone(MemTag::other);
    testing::GradCheckOptions opt;
    opt.step = 2e-3;
    opt.atol = 5e-5;
    testing::expect_grad_close(loss, w, g, "aux loss router", opt);
  }
}

// An expert that no token picks is skipped (no GEMM over zero rows): its weights do not
// affect the output and get no gradient, and the other experts still do.
TEST(MoeFfn, AnExpertNoTokenPicksIsSkipped) {
  const ModelSpec spec = moe_spec({0, true, ""});
  Ffn f(spec);
  const int64_t B = 2, T = 6, N = B * T, C = spec.d_model, E = spec.n_experts;
  Tensor x = testing::random_tensor({N, C}, 13);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::fabs(x.data<float>()[i]);
  Tensor router = f.param("model.layers.0.block_sparse_moe.gate.weight");
  for (int64_t c = 0; c < C; ++c) router.data<float>()[(E - 1) * C + c] = -3.f;  // a far lower logit for positive x
  f.ffn.ensure_buffers(f.act, f.scratch, N, B, DType::f32);
  auto forward = [&] {
    Tensor y = Tensor::zeros({N, C}, DType::f32);
    f.ffn.forward(f.act, f.scratch, x, &y, B, T);
    return std::vector<float>(y.data<float>(), y.data<float>() + y.numel());
  };
  const std::vector<float> y = forward();
  ASSERT_EQ(f.act.offsets[E - 1], f.act.offsets[E]) << "the last expert got tokens";
  Tensor dx = Tensor::zeros({N, C}, DType::f32);
  f.grads.zero_();
  f.ffn.backward(f.act, f.scratch, dx, testing::random_tensor({N, C}, 14), x, T, 0.f);
  const std::string unused = "model.layers.0.block_sparse_moe.experts." + std::to_string(E - 1) + ".";
  for (size_t i = 0; i < f.unit.params().size(); ++i) {
    const ParamSpec& p = f.unit.params()[i];
    const double g = sum_squares(f.unit.grad(static_cast<int>(i)));
    if (p.name.rfind(unused, 0) == 0) {
      EXPECT_EQ(g, 0.0) << p.name;
      Tensor w = f.unit.param(static_cast<int>(i));
      fill(w, 5.f);  // must not change the output
    } else {
      EXPECT_GT(g, 0.0) << p.name;
    }
  }
  EXPECT_EQ(forward(), y);
}

INSTANTIATE_TEST_SUITE_P(Moe, MoeFfnVariants,
                         ::testing::Values(Variant{0, true, "mixtral_norm_topk"}, Variant{0, false, "mixtral_raw_topk"},
                                           Variant{1, true, "qwen2_shared"}, Variant{2, false, "qwen2_two_shared"}),
                         [](const auto& info) { return std::string(info.param.name); });

Tensor random_tokens(int64_t B, int64_t T, int64_t V, uint64_t stream) {
  Tensor t = Tensor::empty({B, T}, DType::i32);
  Rng rng(99, stream);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int32_t>()[i] = static_cast<int32_t>(rng.below(V));
  return t;
}

Stream train_stream(const ModelSpec& spec, int64_t B, int64_t T, uint64_t stream) {
  Stream s;
  s.B = B;
  s.T = T;
  s.tokens = random_tokens(B, T, spec.vocab_size, stream);
  s.targets = random_tokens(B, T, spec.vocab_size, stream + 100);
  s.grad_scale = 1.f / static_cast<float>(B * T);
  s.need_backward = true;
  return s;
}

// MoE in the first block only (every_n_layers 2): a dense and an MoE block side by side.
ModelSpec model_spec(int64_t shared) {
  ModelSpec s = moe_spec({shared, true, ""});
  s.moe_every = 2;
  s.n_layer = 3;
  return s;
}

// The objective (mean token loss + the aux term) against finite differences for every unit.
TEST(MoeModel, ModelGradientsMatchFiniteDifferences) {
  {
    const ModelSpec spec = model_spec(1);
    LocalModel local(spec);
    const int64_t B = 2, T = 6;
    Stream s = train_stream(spec, B, T, 1);
    local.zero_grads();
    local.model.forward(s);
    local.model.backward(s);
    EXPECT_GT(s.aux_loss_sum, 0.0);
    auto loss = [&]() {
      Stream e;
      e.B = B;
      e.T = T;
      e.tokens = s.tokens;
      e.targets = s.targets;
      local.model.forward(e);
      return (e.loss_sum + e.aux_loss_sum) / static_cast<double>(B * T);
    };
    testing::GradCheckOptions opt;
    opt.step = 1e-3;
    opt.atol = 2e-4;
    opt.max_checks = 24;
    auto units = local.model.units();
    for (size_t u = 0; u < units.size(); ++u)
      testing::expect_grad_close(loss, local.params[u], local.grads[u], units[u]->name(), opt);
  }
}

std::vector<std::vector<float>> train_grads(const ModelSpec& spec, const std::vector<bool>& checkpointed) {
  LocalModel local(spec);
  local.model.set_checkpointed_blocks(checkpointed);
  for (uint64_t mb = 0; mb < 2; ++mb) {
    Stream s = train_stream(spec, 2, 12, 10 + mb);
    local.model.forward(s);
    local.model.backward(s);
  }
  std::vector<std::vector<float>> g;
  for (const Tensor& t : local.grads) g.emplace_back(t.data<float>(), t.data<float>() + t.numel());
  return g;
}

// A checkpointed MoE block recomputes the same routing: gradients bitwise those without it.
TEST(MoeModel, CheckpointedBlocksGiveBitwiseTheSameGradients) {
  const ModelSpec spec = model_spec(1);
  const auto plain = train_grads(spec, {false, false, false});
  EXPECT_EQ(train_grads(spec, {true, true, true}), plain);
  EXPECT_EQ(train_grads(spec, {true, false, false}), plain);
}

// The routing kernels reduce in a fixed order and each expert's GEMMs sum every output tile
// in one order, so the FFN's output and gradients are bitwise the same on 1 and 3 threads.
// (Not the whole model: the norms' weight gradients sum per-thread partials.)
TEST(MoeFfn, OutputAndGradientsDoNotDependOnTheThreadCount) {
  const ModelSpec spec = moe_spec({1, true, ""});
  const int64_t B = 3, T = 9, N = B * T, C = spec.d_model;
  auto run = [&](int threads) {
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
    Ffn f(spec);
    Tensor x = testing::random_tensor({N, C}, 11);
    f.ffn.ensure_buffers(f.act, f.scratch, N, B, DType::f32);
    Tensor y = Tensor::zeros({N, C}, DType::f32), dx = Tensor::zeros({N, C}, DType::f32);
    const double aux = f.ffn.forward(f.act, f.scratch, x, &y, B, T);
    f.ffn.backward(f.act, f.scratch, dx, testing::random_tensor({N, C}, 12), x, T, 0.3f);
    omp_set_num_threads(before);
    std::vector<float> out(y.data<float>(), y.data<float>() + y.numel());
    out.insert(out.end(), dx.data<float>(), dx.data<float>() + dx.numel());
    out.insert(out.end(), f.grads.data<float>(), f.grads.data<float>() + f.grads.numel());
    out.push_back(static_cast<float>(aux));
    return out;
  };
  EXPECT_EQ(run(1), run(3));
}

// The routed slots per expert add up to tokens * top_k per MoE layer and per training forward.
TEST(MoeModel, ExpertLoadCountsEveryRoutedSlot) {
  const ModelSpec spec = model_spec(0);
  LocalModel local(spec);
  Stream s = train_stream(spec, 2, 12, 3);
  local.model.forward(s);
  auto loads = local.model.moe_loads();
  ASSERT_EQ(loads.size(), 2u);  // blocks 0 and 2
  for (MoeLoad* l : loads) {
    ASSERT_EQ(l->tokens.size(), 4u);
    EXPECT_EQ(std::accumulate(l->tokens.begin(), l->tokens.end(), int64_t{0}), 2 * 12 * 2);
  }
}

std::vector<std::string> names_of(const Transformer& m) {
  std::vector<std::string> out;
  for (const Unit* u : m.units())
    for (const ParamSpec& p : u->params()) out.push_back(p.name);
  return out;
}

bool has(const std::vector<std::string>& names, const std::string& n) {
  return std::find(names.begin(), names.end(), n) != names.end();
}

// Mixtral's names without shared experts, Qwen2-MoE's with them; export then import is exact.
TEST(MoeModel, HuggingFaceNamesAndSafetensorsRoundTrip) {
  for (int64_t shared : {0, 1}) {
    const ModelSpec spec = model_spec(shared);
    LocalModel a(spec);
    const auto names = names_of(a.model);
    if (shared == 0) {
      EXPECT_TRUE(has(names, "model.layers.0.block_sparse_moe.gate.weight"));
      for (const char* w : {"w1", "w2", "w3"})
        EXPECT_TRUE(has(names, std::string("model.layers.2.block_sparse_moe.experts.3.") + w + ".weight")) << w;
    } else {
      EXPECT_TRUE(has(names, "model.layers.0.mlp.gate.weight"));
      EXPECT_TRUE(has(names, "model.layers.0.mlp.experts.3.down_proj.weight"));
      EXPECT_TRUE(has(names, "model.layers.0.mlp.shared_expert.up_proj.weight"));
      EXPECT_TRUE(has(names, "model.layers.0.mlp.shared_expert_gate.weight"));
    }
    EXPECT_TRUE(has(names, "model.layers.1.mlp.down_proj.weight")) << "block 1 stays dense";
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
}

TEST(MoeModel, ParameterAndFlopCountsFollowTheExperts) {
  ModelSpec dense = model_spec(1);
  dense.n_experts = 0;
  dense.n_shared_experts = 0;
  const ModelSpec moe = model_spec(1);
  const int64_t C = moe.d_model, F = moe.d_ff, E = moe.n_experts;
  // Two MoE blocks: each swaps the dense MLP (3CF) for E experts, one shared expert, router, gate.
  EXPECT_EQ(Transformer(moe).num_params() - Transformer(dense).num_params(), 2 * (E * 3 * C * F + 3 * C * F + E * C + C - 3 * C * F));
  // Per token the MoE block runs top_k + 1 experts' worth of FFN, plus router and gate.
  const double per_block = 6.0 * (3.0 * C * F * (moe.moe_top_k + 1) + E * C + C - 3.0 * C * F);
  EXPECT_NEAR(moe.train_flops_per_token(8) - dense.train_flops_per_token(8), 2 * per_block, 1e-6);
}

}  // namespace
}  // namespace zt
