#include "launch/train_preflight.h"

#include <cstdio>
#include <exception>

#include "core/cpu/isa.h"
#include "core/crc32c.h"
#include "core/error.h"
#include "launch/metrics.h"
#include "launch/run_dir.h"
#include "launch/train_device.h"
#include "launch/train_resume.h"
#include "launch/train_setup.h"
#include "model/hf_io.h"
#include "model/transformer.h"

namespace fs = std::filesystem;

namespace zt {

void check_together(Communicator& comm, const std::function<void()>& checks) {
  std::exception_ptr error;
  std::string message;
  try {
    checks();
  } catch (const std::exception& e) {
    error = std::current_exception();
    message = e.what();
  }
  const int world = comm.world_size(), rank = comm.rank();
  // Slot r: 0 when rank r passed, else 1 + the checksum of its message (exact in a double).
  Tensor outcome = Tensor::zeros({world}, DType::f64, MemTag::comm);
  if (error) outcome.data<double>()[rank] = 1.0 + crc32c(message.data(), message.size());
  comm.all_reduce(outcome)->wait();
  const double* o = outcome.data<double>();
  int first_failed = -1;
  for (int r = world - 1; r >= 0; --r)
    if (o[r] != 0) first_failed = r;
  if (first_failed < 0) return;
  if (world == 1) std::rethrow_exception(error);
  bool first_to_say_it = error != nullptr;
  for (int r = 0; r < rank && first_to_say_it; ++r) first_to_say_it = o[r] != o[rank];
  if (first_to_say_it) {
    if (rank == 0) std::fprintf(stderr, "error: %s\n", message.c_str());
    else std::fprintf(stderr, "error: rank %d: %s\n", rank, message.c_str());
    std::fflush(stderr);
  }
  // Every report is out before any rank exits: launchers stop the whole group at the first.
  comm.barrier()->wait();
  throw ReportedError(fmt::format("rank {} failed before training started", first_failed));
}

TrainPreflight preflight_training(const Config& cfg_in, Communicator& comm, int world, int local_rank,
                                  int local_world) {
  TrainPreflight p;
  p.cfg = cfg_in;
  Config& cfg = p.cfg;
  check_together(comm, [&] {
    p.device = training_device(cfg, local_rank);
    cpu::active_isa();  // a bad ZT_CPU_ISA is an error naming it
    p.data = plan_data(cfg.data, cfg.model.vocab_size);
    cfg.model.vocab_size = p.data.vocab_size;
  });
  p.ckpt_root = checkpoint_root(cfg);
  // The ranks verify the checkpoint together, so an error here is every rank's.
  check_together(comm, [&] {
    p.resume = find_resume_point(comm, p.ckpt_root, cfg.checkpoint.resume, cfg.checkpoint.on_corrupt);
  });
  check_together(comm, [&] {
    p.run_dir = fs::path(cfg.run.out_dir) / cfg.run.name;
    if (!p.resume) refuse_to_replace_a_run(p.run_dir, p.ckpt_root, cfg.run.overwrite);
    check_writable(p.run_dir, "run.out_dir");
    check_writable(p.ckpt_root, cfg.checkpoint.dir.empty() ? "run.out_dir" : "checkpoint.dir");
    const int64_t global_batch = resolve_global_batch(cfg, world, p.resume);
    cfg.train.grad_accum = global_batch / (cfg.train.micro_batch * world);
    cfg.train.global_batch = global_batch;  // the saved config keeps the batch, not the world
    p.memory = plan_input(cfg, world);
    const DeviceMemory memory = available_to_rank(cfg, p.device, local_world);
    p.available_per_rank = memory.bytes;
    check_plan_fits(p.memory, p.available_per_rank, memory.where);
    // A resumed run takes its weights from the checkpoint.
    if (!p.resume && !cfg.model.init_from.empty()) check_hf_safetensors(Transformer(model_spec(cfg)), cfg.model.init_from);
  });
  return p;
}

std::string describe_preflight(const TrainPreflight& p, int world) {
  const Config& c = p.cfg;
  const ModelSpec& spec = p.memory.spec;
  const int64_t params = Transformer(spec).num_params();
  std::string out = fmt::format("zt train --dry-run: {}: every check passed; nothing was written\n", c.run.name);
  out += fmt::format("model: {}, {} layers, d_model {}, {} heads ({} kv), d_ff {}, vocab {}, {} params\n",
                     family_name(spec.family), spec.n_layer, spec.d_model, spec.n_head, spec.n_kv_head, spec.d_ff,
                     spec.vocab_size, format_count(static_cast<double>(params)));
  out += fmt::format("batch: {} rank(s) x micro_batch {} x grad_accum {} = global batch {} samples of {} tokens, "
                     "{} tokens per step, {} steps\n",
                     world, c.train.micro_batch, c.train.grad_accum, c.train.global_batch, c.data.seq_len,
                     c.train.global_batch * c.data.seq_len, c.train.steps);
  out += fmt::format("data: {}\n", p.data.summary);
  out += fmt::format("parallel: ZeRO stage {}, backend {}; precision {} (gradients reduced in {}); activation "
                     "checkpointing {}\n",
                     c.parallel.zero_stage, to_string(c.parallel.backend), to_string(c.precision.compute),
                     to_string(c.precision.reduce), to_string(c.memory.activation_checkpointing));
  if (p.resume)
    out += fmt::format("start: resume from {} (step {}) into {}\n", p.resume->dir.string(), p.resume->meta.step,
                       p.run_dir.string());
  else
    out += fmt::format("start: from {} into {}\n",
                       c.model.init_from.empty() ? std::string("random weights") : c.model.init_from, p.run_dir.string());
  const PlanBytes bytes = plan_memory(p.memory);
  std::string tags;
  for (int t = 0; t < kNumMemTags; ++t)
    if (bytes.by_tag[t] > 0)
      tags += fmt::format("{}{} {:.1f}", tags.empty() ? "" : ", ", mem_tag_name(static_cast<MemTag>(t)),
                          bytes.by_tag[t] / 1048576.0);
  out += fmt::format("memory per rank: {:.1f} MiB (MiB by tag: {})", bytes.total() / 1048576.0, tags);
  if (p.available_per_rank > 0) out += fmt::format(" of {:.0f} MiB available", p.available_per_rank / 1048576.0);
  return out + "\n";
}

}  // namespace zt
