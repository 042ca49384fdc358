#include "launch/trainer.h"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/allocator.h"
#include "core/log.h"
#include "launch/metrics.h"
#include "launch/train_data.h"
#include "launch/train_setup.h"
#include "model/hf_io.h"
#include "optim/schedule.h"
#include "parallel/engine.h"
#include "parallel/sampler.h"

namespace fs = std::filesystem;

namespace zt {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Mean loss over `batches` micro-batches spread evenly over the dataset (the same samples at
// every evaluation, so evaluations are comparable).
double evaluate(Transformer& model, const TokenDataset& data, int64_t micro_batch, int64_t T,
                int64_t batches, Tensor& inputs, Tensor& targets) {
  const int64_t want = batches * micro_batch;
  const int64_t n = data.num_samples();
  const int64_t count = std::min(want, n) / micro_batch * micro_batch;
  if (count == 0) return NAN;
  const double stride = static_cast<double>(n) / static_cast<double>(count);
  double loss_sum = 0;
  std::vector<int64_t> ids(micro_batch);
  for (int64_t b = 0; b < count / micro_batch; ++b) {
    for (int64_t i = 0; i < micro_batch; ++i)
      ids[i] = static_cast<int64_t>(static_cast<double>(b * micro_batch + i) * stride);
    data.fill_batch(ids, inputs, targets);
    Stream s;
    s.B = micro_batch;
    s.T = T;
    s.tokens = inputs;
    s.targets = targets;
    model.forward(s);
    loss_sum += s.loss_sum;
  }
  return loss_sum / static_cast<double>(count * T);
}

nlohmann::json memory_json(const MemStats& m) {
  nlohmann::json j;
  for (int t = 0; t < kNumMemTags; ++t) j[std::string(mem_tag_name(static_cast<MemTag>(t)))] = m.live[t];
  j["peak_total"] = m.peak_total;
  return j;
}

}  // namespace

TrainSummary run_training(const Config& cfg_in) {
  Config cfg = cfg_in;
  if (cfg.parallel.threads > 0) omp_set_num_threads(static_cast<int>(cfg.parallel.threads));

  // Everything that can reject the input happens before the first write to disk.
  DataPlan plan = plan_data(cfg.data, cfg.model.vocab_size);
  cfg.model.vocab_size = plan.vocab_size;
  ModelSpec spec = model_spec(cfg);
  Transformer model(spec);
  Engine engine(model, make_optimizer(cfg.optim), engine_options(cfg.optim));
  if (!cfg.model.init_from.empty())
    load_hf_safetensors(model, cfg.model.init_from);
  else
    model.init_parameters();

  const fs::path run_dir = fs::path(cfg.run.out_dir) / cfg.run.name;
  fs::create_directories(run_dir);
  {
    std::ofstream(run_dir / "config.yaml") << dump_config(cfg);
  }
  TrainData data = materialize_data(std::move(plan), cfg.data, run_dir.string());

  const int64_t T = cfg.data.seq_len, B = cfg.train.micro_batch;
  const int64_t global_batch = B * cfg.train.grad_accum;
  DistributedSampler sampler({cfg.run.seed, data.train->num_samples(), cfg.data.shuffle,
                              global_batch, B, /*world_size=*/1, /*rank=*/0});
  LrSchedule schedule = lr_schedule(cfg.optim, cfg.train.steps);
  MetricsWriter metrics((run_dir / "metrics.jsonl").string());

  const double flops_per_token = spec.train_flops_per_token(T);
  const int64_t tokens_per_step = global_batch * T;
  log::info("zt train: {} ({} {} layers, d_model {}, {} params) on {} threads", cfg.run.name,
            family_name(spec.family), spec.n_layer, spec.d_model, format_count(model.num_params()),
            omp_get_max_threads());
  log::info("data: {} train samples of {} tokens{}, vocab {}; {} tokens per step; run dir {}",
            data.train->num_samples(), T,
            data.val ? fmt::format(", {} val samples", data.val->num_samples()) : "",
            spec.vocab_size, tokens_per_step, run_dir.string());

  Tensor inputs = Tensor::empty({B, T}, DType::i32, MemTag::activations);
  Tensor targets = Tensor::empty({B, T}, DType::i32, MemTag::activations);
  TrainSummary summary;
  summary.run_dir = run_dir.string();
  const auto run_start = Clock::now();
  auto window_start = run_start;
  int64_t window_tokens = 0;

  for (int64_t step = 0; step < cfg.train.steps; ++step) {
    const bool last = step + 1 == cfg.train.steps;
    engine.zero_grads();
    double loss_sum = 0;
    for (const std::vector<int64_t>& micro : sampler.next_batch()) {
      data.train->fill_batch(micro, inputs, targets);
      Stream s;
      s.B = B;
      s.T = T;
      s.tokens = inputs;
      s.targets = targets;
      s.need_backward = true;
      s.grad_scale = 1.f / static_cast<float>(tokens_per_step);
      model.forward(s, &engine);
      model.backward(s, &engine);
      loss_sum += s.loss_sum;
    }
    const float lr = static_cast<float>(schedule.at(step));
    StepStats stats = engine.step(lr);
    const double loss = loss_sum / static_cast<double>(tokens_per_step);
    if (!std::isfinite(loss)) fail("loss is {} at step {}: training diverged (try a lower optim.lr)", loss, step);
    window_tokens += tokens_per_step;
    summary.final_loss = loss;

    std::optional<double> val_loss;
    if (data.val && cfg.train.eval_every > 0 && ((step + 1) % cfg.train.eval_every == 0 || last)) {
      val_loss = evaluate(model, *data.val, B, T, cfg.train.eval_batches, inputs, targets);
      summary.val_loss = *val_loss;
    }

    if (step == 0 || (step + 1) % cfg.train.log_every == 0 || last || val_loss) {
      const double window_s = seconds_since(window_start);
      const double tok_s = window_tokens / std::max(window_s, 1e-9);
      const double elapsed = seconds_since(run_start);
      const double eta = (cfg.train.steps - step - 1) * tokens_per_step / std::max(tok_s, 1e-9);
      MemStats mem = memory_stats();
      log::info("step {:>5}/{} | loss {:.4f}{} | lr {:.2e} | gnorm {:.3f} | {} tok/s | {:.1f} GFLOP/s | {} | eta {}",
                step + 1, cfg.train.steps, loss,
                val_loss ? fmt::format(" | val {:.4f}", *val_loss) : "", lr, stats.grad_norm,
                format_count(tok_s), tok_s * flops_per_token / 1e9, format_duration(elapsed),
                format_duration(eta));
      nlohmann::json rec = {{"step", step + 1},
                            {"loss", loss},
                            {"lr", lr},
                            {"grad_norm", stats.grad_norm},
                            {"clip_scale", stats.clip_scale},
                            {"tokens_per_s", tok_s},
                            {"gflops", tok_s * flops_per_token / 1e9},
                            {"tokens", (step + 1) * tokens_per_step},
                            {"elapsed_s", elapsed},
                            {"memory", memory_json(mem)}};
      if (val_loss) rec["val_loss"] = *val_loss;
      metrics.write(rec);
      window_start = Clock::now();
      window_tokens = 0;
    }
  }

  summary.steps = cfg.train.steps;
  summary.wall_s = seconds_since(run_start);
  summary.tokens_per_s = cfg.train.steps * tokens_per_step / std::max(summary.wall_s, 1e-9);
  const std::string weights = (run_dir / "model.safetensors").string();
  save_hf_safetensors(model, weights, {{"zerotrain.step", std::to_string(cfg.train.steps)}});
  MemStats mem = memory_stats();
  log::info("done: {} steps in {} ({} tok/s), final loss {:.4f}{}; peak memory {:.1f} MiB; weights {}",
            summary.steps, format_duration(summary.wall_s), format_count(summary.tokens_per_s),
            summary.final_loss,
            summary.val_loss >= 0 ? fmt::format(", val loss {:.4f}", summary.val_loss) : "",
            mem.peak_total / 1048576.0, weights);
  return summary;
}

}  // namespace zt
