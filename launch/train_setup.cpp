#include "launch/train_setup.h"

namespace zt {

ModelSpec model_spec(const Config& config) {
  const ModelConfig& m = config.model;
  ZT_CHECK(m.vocab_size > 0, "model.vocab_size unresolved");
  ModelSpec s;
  s.family = m.family == ModelFamily::gpt2 ? Family::gpt2 : Family::llama;
  s.n_layer = m.n_layer;
  s.n_head = m.n_head;
  s.n_kv_head = m.n_kv_head;
  s.d_model = m.d_model;
  s.d_ff = m.d_ff;
  s.vocab_size = m.vocab_size;
  s.max_seq_len = m.max_seq_len;
  s.norm_eps = static_cast<float>(m.norm_eps);
  s.rope_theta = static_cast<float>(m.rope_theta);
  s.tie_embeddings = m.tie_embeddings.value();
  s.attn_bias = m.attn_bias.value();
  s.init_std = static_cast<float>(m.init_std);
  s.attn_gate = m.attn_gate;
  s.worker_interval = m.worker_interval;
  s.worker_conv_width = m.worker_conv_width;
  s.n_experts = m.moe.n_experts;
  s.moe_top_k = m.moe.top_k;
  s.n_shared_experts = m.moe.n_shared_experts;
  s.moe_every = m.moe.every_n_layers;
  s.aux_loss_coef = static_cast<float>(m.moe.aux_loss_coef);
  s.norm_topk_prob = m.moe.norm_topk_prob;
  s.seed = config.run.seed;
  return s;
}

std::unique_ptr<Optimizer> make_optimizer(const OptimConfig& o) {
  if (o.name == OptimName::sgd)
    return make_sgd({static_cast<float>(o.momentum), static_cast<float>(o.weight_decay)});
  return make_adamw({static_cast<float>(o.betas[0]), static_cast<float>(o.betas[1]),
                     static_cast<float>(o.eps), static_cast<float>(o.weight_decay)});
}

EngineOptions engine_options(const OptimConfig& o) {
  EngineOptions e;
  e.grad_clip = o.grad_clip;
  e.decay = {true, true, true};
  for (const std::string& kind : o.no_decay) {
    if (kind == "bias") e.decay.biases = false;
    if (kind == "norm") e.decay.norms = false;
    if (kind == "embedding") e.decay.embeddings = false;
  }
  return e;
}

EngineOptions engine_options(const Config& config, Device device) {
  EngineOptions e = engine_options(config.optim);
  e.zero_stage = static_cast<int>(config.parallel.zero_stage);
  e.bucket_mb = config.parallel.bucket_mb;
  e.compute_dtype = dtype_of(config.precision.compute);
  e.reduce_dtype = dtype_of(config.precision.reduce);
  e.device = device;
  return e;
}

LrSchedule lr_schedule(const OptimConfig& o, int64_t total_steps) {
  LrSchedule s;
  switch (o.schedule.kind) {
    case LrScheduleKind::constant: s.kind = ScheduleKind::constant; break;
    case LrScheduleKind::cosine: s.kind = ScheduleKind::cosine; break;
    case LrScheduleKind::linear: s.kind = ScheduleKind::linear; break;
  }
  s.lr = o.lr;
  s.min_lr = o.schedule.min_lr;
  s.warmup_steps = o.schedule.warmup_steps;
  s.total_steps = total_steps;
  return s;
}

std::vector<bool> checkpointed_layers(const MemoryConfig& memory, int64_t n_layer) {
  std::vector<bool> out(n_layer, false);
  for (int64_t l = 0; l < n_layer; ++l)
    switch (memory.activation_checkpointing) {
      case ActivationCheckpointing::none: break;
      case ActivationCheckpointing::all: out[l] = true; break;
      case ActivationCheckpointing::every_k: out[l] = l % memory.checkpoint_every == 0; break;
    }
  return out;
}

DType dtype_of(Precision p) {
  switch (p) {
    case Precision::fp32: return DType::f32;
    case Precision::bf16: return DType::bf16;
    case Precision::fp16: return DType::f16;
  }
  return DType::f32;
}

LossScaler make_loss_scaler(const PrecisionConfig& precision) {
  if (precision.loss_scale != "dynamic") return LossScaler(false, std::stod(precision.loss_scale), 1);
  if (precision.compute == Precision::fp16) return LossScaler(true, precision.initial_scale, precision.growth_interval);
  return LossScaler(false, 1.0, 1);
}

}  // namespace zt
