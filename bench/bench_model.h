// What the step benchmarks time: a config's model on a single-process engine (with the
// config's ZeRO stage, compute and reduce dtypes), and one fixed micro-batch of random tokens.
#pragma once
#include <memory>

#include "core/config.h"
#include "core/rng.h"
#include "launch/train_setup.h"
#include "parallel/engine.h"

namespace zt {

struct BenchModel {
  explicit BenchModel(const Config& cfg)
      : spec(model_spec(cfg)),
        model(spec),
        comm(make_single_process_comm()),
        engine(model, *comm, make_optimizer(cfg.optim), engine_options(cfg, Device::cpu())),
        B(cfg.train.micro_batch),
        T(cfg.data.seq_len),
        tokens(Tensor::empty({B, T}, DType::i32)),
        targets(Tensor::empty({B, T}, DType::i32)) {
    engine.with_full_params([&] { model.init_parameters(); }, /*write_back=*/true);  // stage 3: gathered
    Rng rng(1, 2);
    for (int64_t i = 0; i < B * T; ++i) {
      tokens.data<int32_t>()[i] = static_cast<int32_t>(rng.below(spec.vocab_size));
      targets.data<int32_t>()[i] = static_cast<int32_t>(rng.below(spec.vocab_size));
    }
  }

  // The micro-batch as a training stream; grad_scale is 1 / tokens per step.
  Stream micro_batch(float grad_scale) const {
    Stream s;
    s.B = B;
    s.T = T;
    s.tokens = tokens;
    s.targets = targets;
    s.need_backward = true;
    s.grad_scale = grad_scale;
    return s;
  }

  ModelSpec spec;
  Transformer model;
  std::unique_ptr<Communicator> comm;
  Engine engine;
  int64_t B, T;
  Tensor tokens, targets;
};

}  // namespace zt
