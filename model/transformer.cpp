#include "model/transformer.h"

#include <cmath>

#include "core/kernels.h"
#include "core/profiler.h"
#include "core/rng.h"

namespace zt {

double ModelSpec::train_flops_per_token(int64_t T) const {
  const double C = static_cast<double>(d_model), F = static_cast<double>(d_ff);
  const double D = static_cast<double>(head_dim());
  const double qkv = C * (n_head + 2 * n_kv_head) * D, out = n_head * D * C;
  const double gate = attn_gate ? C * n_head * D : 0.0;
  const double mlp = (gpt2() ? 2.0 : 3.0) * C * F;
  // Share of tokens that run a block's attention and MLP, and the positions they attend over.
  const double share = workers() ? 1.0 / static_cast<double>(worker_interval) : 1.0;
  const double Tc = static_cast<double>(core_rows(T));
  const double block = share * (qkv + out + gate + mlp) + (workers() ? C * worker_conv_width : 0.0);
  // An MoE block's FFN per token: top_k routed experts and the shared one instead of the MLP.
  const double moe_ffn = 3.0 * C * F * static_cast<double>(moe_top_k + n_shared_experts) +
                         C * static_cast<double>(n_experts) + (n_shared_experts > 0 ? C : 0.0);
  const double moe_extra = static_cast<double>(num_moe_layers()) * (moe_ffn - mlp);
  const double matmul_weights = n_layer * block + moe_extra + static_cast<double>(vocab_size) * C;
  const double attention = share * n_layer * 2.0 * 2.0 * Tc * n_head * D;
  return 6.0 * matmul_weights + 3.0 * attention;
}

Transformer::Transformer(const ModelSpec& spec) : spec_(spec) {
  ZT_CHECK(spec.d_model % spec.n_head == 0 && spec.n_head % spec.n_kv_head == 0,
           "bad head counts {} / {} for d_model {}", spec.n_head, spec.n_kv_head, spec.d_model);
  ZT_CHECK(spec.worker_interval >= 0 && (!spec.workers() || spec.worker_conv_width >= 1),
           "worker_interval {} with conv width {}", spec.worker_interval, spec.worker_conv_width);
  ZT_CHECK(spec.n_experts == 0 || (!spec.gpt2() && !spec.workers() && spec.moe_top_k >= 1 &&
                                   spec.moe_top_k <= spec.n_experts && spec.moe_every >= 1),
           "MoE needs llama without workers and 1 <= top_k {} <= n_experts {}", spec.moe_top_k, spec.n_experts);
  units_.push_back(std::make_unique<Unit>("embed"));
  for (int64_t l = 0; l < spec.n_layer; ++l)
    units_.push_back(std::make_unique<Unit>("block." + std::to_string(l)));
  units_.push_back(std::make_unique<Unit>("final"));

  if (!spec.gpt2()) rope_table_ = rope_table(spec.max_seq_len, spec.head_dim(), spec.rope_theta);
  const Tensor* rope = spec.gpt2() ? nullptr : &rope_table_;

  auto embed = std::make_unique<TokenEmbedding>(*units_.front(), spec);
  int wte = embed->wte_index();
  chain_.push_back(std::move(embed));
  for (int64_t l = 0; l < spec.n_layer; ++l)
    chain_.push_back(std::make_unique<Block>(*units_[1 + l], spec, static_cast<int>(l), rope, &scratch_));
  Unit& final_unit = *units_.back();
  chain_.push_back(std::make_unique<FinalNorm>(final_unit, spec));
  if (spec.tie_embeddings) {
    chain_.push_back(std::make_unique<LmHead>(*units_.front(), wte, spec));
  } else {
    int head = final_unit.add_param("lm_head.weight", {spec.vocab_size, spec.d_model},
                                    ParamKind::matrix, ParamInit::normal);
    chain_.push_back(std::make_unique<LmHead>(final_unit, head, spec));
  }

  // Backward visits the chain in reverse; a unit's last use is its earliest chain position.
  last_use_in_backward_.assign(chain_.size(), false);
  for (size_t i = 0; i < chain_.size(); ++i) {
    bool earlier = false;
    for (size_t j = 0; j < i; ++j) earlier |= &chain_[j]->unit() == &chain_[i]->unit();
    last_use_in_backward_[i] = !earlier;
  }
}

std::vector<Unit*> Transformer::units() {
  std::vector<Unit*> out;
  for (auto& u : units_) out.push_back(u.get());
  return out;
}

std::vector<const Unit*> Transformer::units() const {
  std::vector<const Unit*> out;
  for (auto& u : units_) out.push_back(u.get());
  return out;
}

int64_t Transformer::num_params() const {
  int64_t n = 0;
  for (auto& u : units_) n += u->numel();
  return n;
}

static uint64_t name_stream(const std::string& name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::vector<Unit*> Transformer::forward_order() {
  std::vector<Unit*> out;
  for (auto& m : chain_) out.push_back(&m->unit());
  return out;
}

std::vector<bool> Transformer::backward_reads_params() const {
  std::vector<bool> out;
  for (auto& m : chain_) out.push_back(m->backward_reads_params());
  return out;
}

void Transformer::init_parameters() {
  for (auto& u : units_) init_unit(*u);
}

void Transformer::init_unit(Unit& unit) {
  const float residual_std = spec_.init_std / std::sqrt(2.0f * static_cast<float>(spec_.n_layer));
  Unit* u = &unit;
  {
    for (size_t i = 0; i < u->params().size(); ++i) {
      const ParamSpec& p = u->params()[i];
      Tensor t = u->param(static_cast<int>(i));
      switch (p.init) {
        case ParamInit::normal: fill_normal(t, 0.f, spec_.init_std, spec_.seed, name_stream(p.name)); break;
        case ParamInit::residual: fill_normal(t, 0.f, residual_std, spec_.seed, name_stream(p.name)); break;
        case ParamInit::zeros: fill(t, 0.f); break;
        case ParamInit::ones: fill(t, 1.f); break;
      }
    }
  }
}

void Transformer::forward(Stream& s, UnitHooks* hooks) {
  ZT_CHECK(s.pos + s.T <= spec_.max_seq_len, "positions up to {} exceed max_seq_len {}", s.pos + s.T,
           spec_.max_seq_len);
  if (s.cache) {
    ZT_CHECK(s.pos == s.cache->pos, "decoding at position {}, but the cache holds {} positions", s.pos,
             s.cache->pos);
    ZT_CHECK(!s.need_backward, "no backward through a KV cache");
  }
  s.aux_loss_sum = 0;
  if (s.tokens.device() != device_) s.tokens = s.tokens.to(device_, MemTag::activations);
  if (s.targets.defined() && s.targets.device() != device_) s.targets = s.targets.to(device_, MemTag::activations);
  for (size_t i = 0; i < chain_.size(); ++i) {
    Module& m = *chain_[i];
    profiler::Scope span(profiler::Category::forward, m.name());
    if (hooks) hooks->pre_forward(m.unit());
    m.forward(s);
    if (hooks) hooks->post_forward(m.unit(), s.need_backward && i + 1 == chain_.size());
  }
  if (s.cache) s.cache->pos += s.T;
}

KVCache Transformer::make_kv_cache() const {
  KVCache cache;
  const int64_t rows = spec_.core_rows(spec_.max_seq_len), kv_width = spec_.n_kv_head * spec_.head_dim();
  for (int64_t l = 0; l < spec_.n_layer; ++l) {
    KVCacheLayer layer;
    layer.k = Tensor::zeros({rows, kv_width}, DType::f32, MemTag::activations);
    layer.v = Tensor::zeros({rows, kv_width}, DType::f32, MemTag::activations);
    if (spec_.workers())
      layer.mix_history = Tensor::zeros({spec_.worker_conv_width, spec_.d_model}, DType::f32, MemTag::activations);
    cache.layers.push_back(std::move(layer));
  }
  return cache;
}

void Transformer::backward(Stream& s, UnitHooks* hooks) {
  for (size_t i = chain_.size(); i-- > 0;) {
    Module& m = *chain_[i];
    profiler::Scope span(profiler::Category::backward, m.name());
    if (hooks) hooks->pre_backward(m.unit());
    m.backward(s);
    if (hooks) hooks->post_backward(m.unit(), last_use_in_backward_[i]);
  }
}

void Transformer::set_checkpointed_blocks(const std::vector<bool>& layers) {
  ZT_CHECK(static_cast<int64_t>(layers.size()) == spec_.n_layer, "{} checkpoint flags for {} layers", layers.size(),
           spec_.n_layer);
  for (int64_t l = 0; l < spec_.n_layer; ++l)
    static_cast<Block&>(*chain_[1 + l]).set_checkpointed(layers[l] ? &shared_activations_ : nullptr);
}

int64_t Transformer::num_checkpointed_blocks() const {
  int64_t n = 0;
  for (int64_t l = 0; l < spec_.n_layer; ++l) n += static_cast<const Block&>(*chain_[1 + l]).checkpointed();
  return n;
}

std::vector<MoeLoad*> Transformer::moe_loads() {
  std::vector<MoeLoad*> out;
  for (int64_t l = 0; l < spec_.n_layer; ++l)
    if (MoeLoad* load = static_cast<Block&>(*chain_[1 + l]).moe_load()) out.push_back(load);
  return out;
}

void Transformer::set_activation_dtype(DType dtype) {
  ZT_CHECK(dtype == DType::f32 || dtype == DType::bf16 || dtype == DType::f16, "activation dtype {}", dtype_name(dtype));
  for (auto& m : chain_) m->set_activation_dtype(dtype);
  shared_activations_ = {};  // reallocated in the new dtype by the next forward
}

void Transformer::set_device(Device device) {
  device_ = device;
  for (auto& m : chain_) m->set_device(device);
  // The blocks hold a pointer to rope_table_, so the member is replaced, not re-seated.
  if (rope_table_.defined() && rope_table_.device() != device) rope_table_ = rope_table_.to(device, MemTag::other);
  scratch_ = {};
  shared_activations_ = {};  // reallocated on the device by the next forward
}

LocalModel::LocalModel(const ModelSpec& spec) : model(spec) {
  for (Unit* u : model.units()) {
    params.push_back(Tensor::zeros({u->numel()}, DType::f32, MemTag::params));
    grads.push_back(Tensor::zeros({u->numel()}, DType::f32, MemTag::grads));
    u->bind(params.back(), grads.back());
  }
  model.init_parameters();
}

void LocalModel::zero_grads() {
  for (Tensor& g : grads) g.zero_();
}

}  // namespace zt
