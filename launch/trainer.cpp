#include "launch/trainer.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include <signal.h>
#include <unistd.h>

#include "core/allocator.h"
#include "core/cpu/isa.h"
#include "core/fault_injection.h"
#include "core/log.h"
#include "core/profiler.h"
#include "core/runtime.h"
#include "parallel/comm_gloo.h"
#include "parallel/comm_mpi.h"
#include "parallel/comm_staged.h"
#ifdef ZT_WITH_NCCL
#include "parallel/comm_nccl.h"
#endif
#include "core/fileio.h"
#include "core/hf_config.h"
#include "launch/eval_loss.h"
#include "launch/memory_plan.h"
#include "launch/run_dir.h"
#include "launch/metrics.h"
#include "launch/preemption.h"
#include "launch/profile_window.h"
#include "launch/train_data.h"
#include "launch/train_device.h"
#include "launch/train_preflight.h"
#include "launch/tensorboard.h"
#include "launch/train_resume.h"
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

// Live bytes per tag at the end of the step, the step's peaks (peaks are reset as each step
// starts), and the run's peak so far.
nlohmann::json memory_json(const MemStats& m, const MemStats& run_peak) {
  nlohmann::json j, peak;
  for (int t = 0; t < kNumMemTags; ++t) {
    const std::string tag(mem_tag_name(static_cast<MemTag>(t)));
    j[tag] = m.live[t];
    peak[tag] = m.peak[t];
  }
  j["peak"] = peak;
  j["peak_total"] = m.peak_total;
  j["run_peak_total"] = run_peak.peak_total;
  return j;
}

// MoE statistics of one step from the all-reduced buffer: [3] the aux loss sum (token
// weighted), [4...] routed slots per expert per MoE layer.
struct MoeStepStats {
  double aux_loss = 0;                        // the objective's aux term
  std::vector<std::vector<int64_t>> tokens;   // per MoE layer, per expert
  std::vector<double> ratios;                 // per MoE layer: least / most loaded expert
  double worst_ratio = 1;
};

MoeStepStats moe_step_stats(const Tensor& reduced, size_t layers, int64_t n_experts, int64_t tokens_per_step) {
  MoeStepStats m;
  const double* v = reduced.data<double>();
  m.aux_loss = v[3] / static_cast<double>(tokens_per_step);
  for (size_t l = 0; l < layers; ++l) {
    std::vector<int64_t> t(n_experts);
    for (int64_t e = 0; e < n_experts; ++e) t[e] = static_cast<int64_t>(v[4 + l * n_experts + e]);
    const auto [lo, hi] = std::minmax_element(t.begin(), t.end());
    m.ratios.push_back(*hi > 0 ? static_cast<double>(*lo) / static_cast<double>(*hi) : 1.0);
    m.worst_ratio = std::min(m.worst_ratio, m.ratios.back());
    m.tokens.push_back(std::move(t));
  }
  return m;
}

// Running maxima of the per-step peaks.
void track_peaks(MemStats& run, const MemStats& step) {
  for (int t = 0; t < kNumMemTags; ++t) run.peak[t] = std::max(run.peak[t], step.peak[t]);
  run.peak_total = std::max(run.peak_total, step.peak_total);
}

std::string peaks_by_tag(const MemStats& m) {
  std::string out;
  for (int t = 0; t < kNumMemTags; ++t)
    if (m.peak[t] > 0)
      out += fmt::format("{}{} {:.1f}", out.empty() ? "" : ", ", mem_tag_name(static_cast<MemTag>(t)),
                         m.peak[t] / 1048576.0);
  return out;
}

// Which model and tokenizer a Hugging Face directory in model.init_from supplied.
void log_hf_source(const Config& cfg) {
  const fs::path dir(cfg.model.init_from);
  const char* own = fs::exists(dir / "tokenizer.json") ? "tokenizer.json"
                    : fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt") ? "vocab.json + merges.txt"
                                                                                         : nullptr;
  const bool uses_own = own && (cfg.data.tokenizer == (dir / "tokenizer.json").string() ||
                                cfg.data.tokenizer == (dir / "vocab.json").string());
  log::info("model.init_from: Hugging Face directory {} (model keys from its config.json); tokenizer: {}{}",
            dir.string(), uses_own ? "its " + std::string(own) : cfg.data.tokenizer,
            own && !uses_own ? fmt::format(" (data.tokenizer is set; the directory's {} is not used)", own) : "");
}

// Test hook: with ZT_TEST_SAMPLE_LOG=PREFIX each rank appends "STEP ID ID ..." per step
// (its slice of the global batch, in stream order) to PREFIX.rank<r>.
class SampleLog {
 public:
  explicit SampleLog(int rank) {
    if (const char* p = std::getenv("ZT_TEST_SAMPLE_LOG"); p && *p)
      out_.open(fmt::format("{}.rank{}", p, rank), std::ios::app);
  }
  void record(int64_t step, const std::vector<std::vector<int64_t>>& micro_batches) {
    if (!out_.is_open()) return;
    out_ << step;
    for (const auto& mb : micro_batches)
      for (int64_t id : mb) out_ << ' ' << id;
    out_ << '\n';
    out_.flush();
  }

 private:
  std::ofstream out_;
};

std::string format_bytes(double b) {
  return b >= 1 << 30 ? fmt::format("{:.2f} GiB", b / (1 << 30)) : fmt::format("{:.1f} MiB", b / (1 << 20));
}

void log_save(const SaveStats& s, bool async) {
  const double mb_s = s.bytes / 1e6 / std::max(s.write_s, 1e-9);
  if (async)
    log::info("checkpoint step {} published: {} ({} per rank written in {:.2f} s, {:.0f} MB/s per rank in the background)",
              s.step, s.dir.string(), format_bytes(s.bytes), s.write_s, mb_s);
  else
    log::info("checkpoint step {} saved: {} ({} per rank in {:.2f} s, {:.0f} MB/s per rank; training stalled {:.2f} s)",
              s.step, s.dir.string(), format_bytes(s.bytes), s.write_s, mb_s, s.stall_s);
}

}  // namespace

namespace {

// Overflowed steps in a row, with no loss scale left to lower, after which a run fails.
constexpr int64_t kMaxStuckSteps = 10;

// MPI under mpirun, Gloo under zt launch, else one process: what every host backend runs on.
std::unique_ptr<Communicator> make_host_communicator(const RankInfo& where, std::chrono::milliseconds timeout) {
  if (launched_by_mpi()) return make_mpi_comm();
  if (where.launcher == "torchrun" && where.world_size > 1) return make_gloo_comm(where, timeout);
  if (where.world_size > 1)
    fail("{} started {} ranks; zerotrain runs under mpirun (MPI) or zt launch (Gloo)", where.launcher, where.world_size);
  return make_single_process_comm();
}

std::unique_ptr<Communicator> make_nccl_communicator(const RankInfo& where, std::chrono::milliseconds timeout,
                                                     Device compute) {
  if (compute.is_cpu())
    fail("parallel.backend is nccl, which reduces GPU tensors, but this run computes on {}; use auto, mpi or gloo",
         compute.str());
#ifdef ZT_WITH_NCCL
  return make_nccl_comm(make_host_communicator(where, timeout), where, timeout);
#else
  fail("parallel.backend is nccl but this zt was built without NCCL; use staged");
#endif
}

}  // namespace

std::unique_ptr<Communicator> make_communicator(CommBackend backend, const RankInfo& where, double timeout_s,
                                               Device compute) {
  const std::chrono::milliseconds timeout(static_cast<int64_t>(timeout_s * 1000));
  switch (backend) {
    case CommBackend::single:
      if (where.world_size > 1)
        fail("parallel.backend is single but the launcher ({}) started {} ranks", where.launcher, where.world_size);
      return make_single_process_comm();
    case CommBackend::mpi:
      if (!launched_by_mpi()) fail("parallel.backend is mpi but this process was not started by mpirun");
      return make_mpi_comm();
    case CommBackend::gloo:
      if (where.launcher != "torchrun")
        fail("parallel.backend is gloo, which needs RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT (zt launch sets them)");
      return make_gloo_comm(where, timeout);
    case CommBackend::nccl: return make_nccl_communicator(where, timeout, compute);
    case CommBackend::staged: return make_staged_comm(make_host_communicator(where, timeout));
    case CommBackend::automatic:
      if (compute.is_cpu() || where.world_size <= 1) return make_host_communicator(where, timeout);
#ifdef ZT_WITH_NCCL
      return make_nccl_communicator(where, timeout, compute);
#else
      return make_staged_comm(make_host_communicator(where, timeout));
#endif
  }
  return make_single_process_comm();
}

TrainSummary run_training(const Config& cfg_in) {
  Config cfg = cfg_in;
  install_preemption_handlers();  // before any thread starts: they inherit its signal mask
  const RankInfo where = discover_rank();
  // GPU ranks reduce device tensors (NCCL, or staged through the host). Where the node's ranks
  // cannot all have a GPU (none visible, or more ranks than GPUs under NCCL), every rank joins
  // the host communicator instead, so that preflight reports why, once for all.
  const int gpus = cfg.runtime.device == RuntimeDevice::cuda ? visible_gpus() : 0;  // CPU runs never ask CUDA
  const bool on_gpu = gpus > 0 && (ranks_share_gpus(cfg) || where.local_world_size <= gpus);
  const bool report_only = cfg.runtime.device == RuntimeDevice::cuda && !on_gpu;
  const CommBackend backend = report_only ? CommBackend::automatic : cfg.parallel.backend;
  std::unique_ptr<Communicator> comm = make_communicator(
      backend, where, cfg.parallel.timeout_s, on_gpu ? Device::cuda(where.local_rank) : Device::cpu());
  const int rank = comm->rank(), world = comm->world_size();
  const bool writer = rank == 0;  // rank 0 writes the run directory
  log::LogOptions log_options;
  log_options.rank = rank;
  log_options.all_ranks = cfg.log.all_ranks;
  log_options.level = cfg.log.level == LogLevel::debug  ? spdlog::level::debug
                      : cfg.log.level == LogLevel::warn ? spdlog::level::warn
                                                        : spdlog::level::info;
  log::init(log_options);
#if defined(__SANITIZE_THREAD__)
  // libgomp's fork and barriers are invisible to ThreadSanitizer, which would report every
  // parallel loop as a race: under TSan the OpenMP loops run on the calling thread, and TSan
  // checks the threads that are ours (comm thread, checkpoint writer, signal thread).
  omp_set_num_threads(1);
#else
  omp_set_num_threads(threads_per_rank(static_cast<int>(cfg.parallel.threads), where));
#endif

  // Everything that can reject the input happens before the first write to disk.
  TrainPreflight checked = preflight_training(cfg, *comm, world, where.local_rank, where.local_world_size);
  comm->reset_stats();  // the metrics count the run's traffic, not the startup checks' agreement
  cfg = checked.cfg;
  const Device device = checked.device;
  use_device(device);
  DataPlan plan = std::move(checked.data);
  const std::optional<ResumePoint> resume = std::move(checked.resume);
  const fs::path run_dir = checked.run_dir, ckpt_root = checked.ckpt_root;
  const int64_t B = cfg.train.micro_batch, T = cfg.data.seq_len;
  const int64_t global_batch = cfg.train.global_batch;
  ModelSpec spec = model_spec(cfg);
  Transformer model(spec);
  model.set_checkpointed_blocks(checkpointed_layers(cfg.memory, spec.n_layer));
  Engine engine(model, *comm, make_optimizer(cfg.optim), engine_options(cfg, device));
  CheckpointManager checkpoints(engine, {ckpt_root, cfg.checkpoint.keep_last, cfg.checkpoint.async});
  log::info("zt train: {} ({} {} layers, d_model {}, {} params); {} rank(s) via {}, ZeRO stage {}, {} threads per rank, "
            "CPU kernels {}{}",
            cfg.run.name, family_name(spec.family), spec.n_layer, spec.d_model, format_count(model.num_params()),
            world, comm->backend(), engine.stage(), omp_get_max_threads(), cpu::isa_description(),
            device.is_cpu() ? "" : "; training on " + describe_device(device));
  if (is_hf_model_dir(cfg.model.init_from)) log_hf_source(cfg);
  int64_t start_step = 0;
  int64_t consumed_samples = 0;
  LossScaler scaler = make_loss_scaler(cfg.precision);
  if (resume) {
    LoadStats ls;
    const TrainingState state = checkpoints.load(*resume, &ls);
    start_step = state.step;
    consumed_samples = state.consumed_samples;
    const nlohmann::json saved = state.extra.value("loss_scaler", nlohmann::json());
    if (scaler.dynamic() && saved.contains("dynamic") && saved["dynamic"] == true) {
      try {
        scaler.load(saved);
      } catch (const Error& e) {
        fail("{}: state.{}", (resume->dir / kMetaFile).string(), e.what());
      }
    }
    log::info("resumed from {} (step {}, saved by {} rank(s) at ZeRO stage {}): verified in {:.2f} s, read {} per rank "
              "in {:.2f} s ({:.0f} MB/s per rank)",
              resume->dir.string(), state.step, resume->meta.world_size, resume->meta.zero_stage, ls.verify_s,
              format_bytes(ls.bytes), ls.read_s, ls.bytes / 1e6 / std::max(ls.read_s, 1e-9));
  } else {
    engine.with_full_params(
        [&] {
          if (!cfg.model.init_from.empty())
            load_hf_safetensors(model, cfg.model.init_from);
          else
            model.init_parameters();
        },
        /*write_back=*/true);
  }

  TrainData data;
  std::optional<RunDirLock> lock;  // held until the run ends
  if (writer) {
    fs::create_directories(run_dir);
    lock.emplace(run_dir);
    data = materialize_data(std::move(plan), cfg.data, run_dir.string(), true);
  }
  comm->barrier()->wait();  // the prepared corpus exists for every rank
  if (!writer) data = materialize_data(std::move(plan), cfg.data, run_dir.string(), false);
  if (resume) check_together(*comm, [&] { check_stream_continues(cfg, *resume, data.train->num_samples()); });
  std::unique_ptr<MetricsWriter> metrics;
  std::unique_ptr<TensorBoardWriter> tensorboard;  // a new events file per run, resumes included
  if (writer) {
    write_file_atomic(run_dir / "config.yaml", dump_config(cfg));
    if (resume) trim_metrics(run_dir / "metrics.jsonl", start_step);
    metrics = std::make_unique<MetricsWriter>((run_dir / "metrics.jsonl").string(), resume.has_value());
    if (cfg.log.tensorboard) tensorboard = std::make_unique<TensorBoardWriter>(run_dir, start_step + 1);
  }

  DistributedSampler sampler({cfg.run.seed, data.train->num_samples(), cfg.data.shuffle, global_batch, B, world, rank});
  sampler.set_consumed_samples(consumed_samples);
  LrSchedule schedule = lr_schedule(cfg.optim, cfg.train.steps);
  const std::string config_yaml = dump_config(cfg);
  auto training_state = [&](int64_t steps_done) {
    nlohmann::json extra = loop_state(cfg, sampler, data.train->num_samples(), schedule, steps_done);
    extra["loss_scaler"] = scaler.state();
    return TrainingState{steps_done, sampler.consumed_samples(), global_batch, std::move(extra), config_yaml};
  };
  SampleLog sample_log(rank);

  const double flops_per_token = spec.train_flops_per_token(T);
  const int64_t tokens_per_step = global_batch * T;
  if (cfg.precision.compute != Precision::fp32 || cfg.precision.reduce != Precision::fp32 || scaler.scale() != 1.0)
    log::info("precision: {} matmuls (weights and inputs), fp32 master weights, accumulation, norms, softmax and loss; "
              "gradients reduced in {}; loss scale {}{}",
              to_string(cfg.precision.compute), to_string(cfg.precision.reduce), scaler.scale(),
              scaler.dynamic() ? " (dynamic)" : "");
  if (model.num_checkpointed_blocks() > 0)
    log::info("activation checkpointing: {} of {} blocks keep only their input and recompute their forward in backward",
              model.num_checkpointed_blocks(), spec.n_layer);
  auto shards = [](const TokenDataset& d) {
    return d.num_ranges() > 1 ? fmt::format(" from {} shards", d.num_ranges()) : std::string();
  };
  log::info("data: {} train samples of {} tokens{}{}, vocab {}; {} tokens per step; run dir {}",
            data.train->num_samples(), T, shards(*data.train),
            data.val ? fmt::format(", {} val samples{}", data.val->num_samples(), shards(*data.val)) : "",
            spec.vocab_size, tokens_per_step, run_dir.string());

  const std::vector<std::vector<int64_t>> val_batches =
      data.val ? eval_sample_batches(data.val->num_samples(), B, cfg.train.eval_batches)
               : std::vector<std::vector<int64_t>>{};
  // A micro-batch's inputs and targets sit in one buffer so that a GPU run copies them over
  // in one transfer.
  const Tensor batch = Tensor::empty({2, B, T}, DType::i32, MemTag::activations);
  Tensor inputs = batch.view(0, {B, T}), targets = batch.view(B * T, {B, T});
  Tensor device_batch = device.is_cpu() ? batch : Tensor::empty({2, B, T}, DType::i32, MemTag::activations, device);
  // What the memory records report: the allocator of the device the model state lives on.
  CachingAllocator& train_allocator = device.is_cpu() ? CpuAllocator::instance() : device_allocator(device.index);
  TrainSummary summary;
  summary.run_dir = run_dir.string();
  const auto run_start = Clock::now();
  auto window_start = run_start;
  int64_t window_tokens = 0;
  if (start_step >= cfg.train.steps)
    log::info("the checkpoint is at step {} and train.steps is {}: nothing left to train", start_step, cfg.train.steps);

  ProfileWindow profile(cfg.profile, cfg.profile.dir.empty() ? run_dir / "trace" : fs::path(cfg.profile.dir), *comm,
                        start_step + 1, cfg.train.steps, flops_per_token * static_cast<double>(tokens_per_step) / world);

  MemStats run_peak;  // maxima of the per-step peaks, setup included
  for (int64_t step = start_step; step < cfg.train.steps; ++step) {
    const bool last = step + 1 == cfg.train.steps;
    profile.begin_step(step + 1);
    track_peaks(run_peak, train_allocator.stats());
    train_allocator.reset_peaks();
    std::optional<profiler::Scope> step_span(std::in_place, profiler::Category::step, "step");
    engine.zero_grads();
    // One all-reduce per step carries the loss, two flags (a rank received a stop signal; a
    // rank is still writing an async checkpoint) and, for MoE, the aux loss and expert loads.
    const std::vector<MoeLoad*> moe_loads = model.moe_loads();
    const int64_t n_experts = spec.n_experts;
    Tensor loss_sum = Tensor::zeros({4 + static_cast<int64_t>(moe_loads.size()) * n_experts}, DType::f64, MemTag::comm);
    for (MoeLoad* l : moe_loads) l->tokens.assign(n_experts, 0);
    const auto micro_batches = [&] {
      profiler::Scope span(profiler::Category::data, "sample");
      return sampler.next_batch();
    }();
    sample_log.record(step + 1, micro_batches);
    for (size_t m = 0; m < micro_batches.size(); ++m) {
      engine.begin_micro_batch(m + 1 == micro_batches.size());
      {
        profiler::Scope span(profiler::Category::data, "fill_batch");
        data.train->fill_batch(micro_batches[m], inputs, targets);
        if (!device.is_cpu()) device_batch.copy_from(batch);  // the one host-to-device copy of the micro-batch
      }
      Stream s;
      s.B = B;
      s.T = T;
      s.tokens = device_batch.view(0, {B, T});
      s.targets = device_batch.view(B * T, {B, T});
      s.loss_total = engine.loss_total();  // summed where the logits are; read back once, by step()
      s.need_backward = true;
      s.grad_scale = static_cast<float>(scaler.scale() / static_cast<double>(tokens_per_step));
      if (m == 0 && fault_injected("overflow", step + 1, rank)) s.grad_scale = std::numeric_limits<float>::infinity();
      model.forward(s, &engine);
      model.backward(s, &engine);
      loss_sum.data<double>()[3] += s.aux_loss_sum;
    }
    for (size_t l = 0; l < moe_loads.size(); ++l)
      for (int64_t e = 0; e < n_experts; ++e)
        loss_sum.data<double>()[4 + l * n_experts + e] = static_cast<double>(moe_loads[l]->tokens[e]);
    const float lr = static_cast<float>(schedule.at(step));
    StepStats stats = [&] {
      profiler::Scope span(profiler::Category::optimizer, "optimizer_step");
      return engine.step(lr, static_cast<float>(1.0 / scaler.scale()));
    }();
    loss_sum.data<double>()[0] = stats.loss_sum;
    const double loss_scale = scaler.scale();
    scaler.update(stats.skipped);
    if (stats.skipped)
      log::warn_once("step {}: gradients overflowed (inf/NaN) at loss scale {}; step skipped on every rank{}", step + 1,
                     loss_scale, scaler.dynamic() ? fmt::format(", loss scale now {}", scaler.scale()) : "");
    // Skipped steps that no lower scale can rescue would otherwise run to the end and save
    // untrained weights as if all were well.
    if (scaler.stuck_steps() >= kMaxStuckSteps) {
      const bool fixed = !scaler.dynamic() && loss_scale != 1;
      const std::string at = fixed ? fmt::format("at the fixed loss scale {} (precision.loss_scale)", loss_scale)
                             : scaler.dynamic() ? "at loss scale 1, the dynamic scale's floor"
                                                : "without loss scaling";
      fail("gradients were inf/NaN in {} steps in a row (steps {}-{}) {}: nothing trains; {}", kMaxStuckSteps,
           step + 2 - kMaxStuckSteps, step + 1, at,
           fixed ? "lower precision.loss_scale (or set it to dynamic) or optim.lr"
                 : "training diverged (try a lower optim.lr)");
    }
    const bool sigterm_twice = fault_injected("sigterm_twice", step + 1, rank);
    if (fault_injected("sigterm", step + 1, rank) || sigterm_twice) {
      // To the process, as a scheduler sends it (a raise() would pend on this thread, which
      // blocks it), then wait for the signal thread to record it so the stop step is exact.
      kill(getpid(), SIGTERM);
      for (int i = 0; i < 5000 && preemption_signal() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      // A second signal once the first is recorded (so the two cannot merge into one): the
      // signal thread ends the process at once. Were it not to, the save below would run and
      // the test would find its checkpoint.
      if (sigterm_twice) {
        kill(getpid(), SIGTERM);
        std::this_thread::sleep_for(std::chrono::seconds(10));
      }
    }
    if (fault_injected("sigkill", step + 1, rank)) std::raise(SIGKILL);
    if (fault_injected("hang", step + 1, rank))  // a rank stuck outside the collectives
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    loss_sum.data<double>()[1] = preemption_signal() != 0;
    loss_sum.data<double>()[2] = checkpoints.has_pending() && !checkpoints.pending_written();
    comm->all_reduce(loss_sum)->wait();
    const bool stop = loss_sum.data<double>()[1] > 0;
    if (checkpoints.has_pending() && loss_sum.data<double>()[2] == 0) log_save(*checkpoints.finish(), true);
    const double loss = loss_sum.data<double>()[0] / static_cast<double>(tokens_per_step);
    if (!std::isfinite(loss)) fail("loss is {} at step {}: training diverged (try a lower optim.lr)", loss, step + 1);
    window_tokens += tokens_per_step;
    summary.final_loss = loss;
    const MoeStepStats moe = moe_step_stats(loss_sum, moe_loads.size(), n_experts, tokens_per_step);

    std::optional<double> val_loss;
    if (data.val && cfg.train.eval_every > 0 && ((step + 1) % cfg.train.eval_every == 0 || last)) {
      profiler::Scope span(profiler::Category::eval, "evaluate");
      // Every rank evaluates the same samples (at stage 3 all ranks take part in the gathers).
      val_loss = evaluate_loss(model, &engine, *data.val, val_batches).loss;
      summary.val_loss = *val_loss;
    }

    step_span.reset();
    const std::optional<nlohmann::json> profile_record = profile.end_step(step + 1);
    if (step == 0 || (step + 1) % cfg.train.log_every == 0 || last || val_loss || profile_record) {
      const double window_s = seconds_since(window_start);
      const double tok_s = window_tokens / std::max(window_s, 1e-9);
      const double elapsed = seconds_since(run_start);
      const double eta = (cfg.train.steps - step - 1) * tokens_per_step / std::max(tok_s, 1e-9);
      MemStats mem = train_allocator.stats();
      track_peaks(run_peak, mem);
      log::info("step {:>5}/{} | loss {:.4f}{}{} | lr {:.2e} | gnorm {:.3f} | {} tok/s | {:.1f} GFLOP/s | {} | eta {}",
                step + 1, cfg.train.steps, loss,
                val_loss ? fmt::format(" | val {:.4f}", *val_loss) : "",
                moe_loads.empty() ? "" : fmt::format(" | aux {:.4f} | load min/max {:.2f}", moe.aux_loss, moe.worst_ratio),
                lr, stats.grad_norm,
                format_count(tok_s), tok_s * flops_per_token / 1e9, format_duration(elapsed),
                format_duration(eta));
      const CommStats cs = comm->stats();
      const ModelStateBytes state = engine.model_state_bytes();
      nlohmann::json comm_bytes, comm_calls;
      for (int op = 0; op < kNumCommOps; ++op) {
        comm_bytes[std::string(comm_op_name(static_cast<CommOp>(op)))] = cs.bytes_sent[op];
        comm_calls[std::string(comm_op_name(static_cast<CommOp>(op)))] = cs.calls[op];
      }
      nlohmann::json rec = {{"step", step + 1},
                            {"loss", loss},
                            {"lr", lr},
                            {"grad_norm", stats.grad_norm},
                            {"clip_scale", stats.clip_scale},
                            {"tokens_per_s", tok_s},
                            {"gflops", tok_s * flops_per_token / 1e9},
                            {"tokens", (step + 1) * tokens_per_step},
                            {"elapsed_s", elapsed},
                            {"memory", memory_json(mem, run_peak)},
                            {"model_state_bytes", {{"params", state.params}, {"grads", state.grads}, {"optimizer", state.optimizer}}},
                            {"world_size", world},
                            {"zero_stage", engine.stage()},
                            {"comm_bytes_sent", comm_bytes},
                            {"comm_calls", comm_calls},
                            {"comm_busy_s", cs.total_busy_s()},
                            {"comm_exposed_s", cs.exposed_s},
                            {"loss_scale", loss_scale},
                            {"skipped_steps", scaler.skipped_steps()}};
      // What differs between ranks: every rank's allocator peak and communication times.
      Tensor mine = Tensor::empty({3}, DType::f64, MemTag::comm);
      mine.data<double>()[0] = static_cast<double>(mem.peak_total);
      mine.data<double>()[1] = cs.total_busy_s();
      mine.data<double>()[2] = cs.exposed_s;
      Tensor all = Tensor::empty({3 * world}, DType::f64, MemTag::comm);
      comm->all_gather(all, mine)->wait();
      nlohmann::json per_rank = nlohmann::json::array();
      for (int r = 0; r < world; ++r)
        per_rank.push_back({{"rank", r},
                            {"peak_bytes", all.data<double>()[3 * r]},
                            {"comm_busy_s", all.data<double>()[3 * r + 1]},
                            {"comm_exposed_s", all.data<double>()[3 * r + 2]}});
      rec["ranks"] = per_rank;
      if (!moe_loads.empty()) {
        rec["aux_loss"] = moe.aux_loss;
        rec["expert_tokens"] = moe.tokens;
        rec["expert_load_ratio"] = moe.ratios;
      }
      if (val_loss) rec["val_loss"] = *val_loss;
      if (profile_record) rec["profile"] = *profile_record;
      if (metrics) metrics->write(rec);
      if (tensorboard) tensorboard->write(step + 1, tensorboard_scalars(rec));
      window_start = Clock::now();
      window_tokens = 0;
    }

    const int64_t done = step + 1;
    const bool scheduled = cfg.checkpoint.every > 0 && (done % cfg.checkpoint.every == 0 || last);
    if (scheduled || stop) {
      profiler::Scope span(profiler::Category::checkpoint, "checkpoint_save");
      const SaveStats saved = checkpoints.save(training_state(done));
      if (cfg.checkpoint.async && !stop)
        log::info("checkpoint step {}: snapshot taken in {:.3f} s (training stall), writing in the background",
                  done, saved.stall_s);
      else if (!cfg.checkpoint.async)
        log_save(saved, false);
    }
    if (stop) {
      if (auto s = checkpoints.finish()) log_save(*s, true);
      const int sig = preemption_signal();
      log::warn_once("stopping at step {} on {}: checkpoint {} is complete; run the same command again to resume "
                     "(exit code {})",
                     done, sig ? strsignal(sig) : "another rank's signal", (ckpt_root / checkpoint_name(done)).string(),
                     kExitPreempted);
      summary.steps = done;
      summary.preempted = true;
      summary.wall_s = seconds_since(run_start);
      return summary;
    }
  }
  if (auto s = checkpoints.finish()) log_save(*s, true);

  summary.steps = cfg.train.steps;
  summary.wall_s = seconds_since(run_start);
  summary.tokens_per_s =
      std::max<int64_t>(cfg.train.steps - start_step, 0) * tokens_per_step / std::max(summary.wall_s, 1e-9);
  const std::string weights = (run_dir / "model.safetensors").string();
  engine.with_full_params(
      [&] {
        if (writer) save_hf_safetensors(model, weights, {{"zerotrain.step", std::to_string(cfg.train.steps)}});
      },
      /*write_back=*/false);
  comm->barrier()->wait();
  track_peaks(run_peak, train_allocator.stats());
  log::info("done: {} steps in {} ({} tok/s), final loss {:.4f}{}; peak memory {:.1f} MiB per rank (MiB by tag: {}); "
            "weights {}",
            summary.steps, format_duration(summary.wall_s), format_count(summary.tokens_per_s),
            summary.final_loss,
            summary.val_loss >= 0 ? fmt::format(", val loss {:.4f}", summary.val_loss) : "",
            run_peak.peak_total / 1048576.0, peaks_by_tag(run_peak), weights);
  return summary;
}

}  // namespace zt
