#include "launch/train_resume.h"

#include <ctime>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/fileio.h"
#include "core/log.h"

namespace zt {

namespace fs = std::filesystem;

fs::path checkpoint_root(const Config& cfg) {
  if (!cfg.checkpoint.dir.empty()) return cfg.checkpoint.dir;
  return fs::path(cfg.run.out_dir) / cfg.run.name / "checkpoints";
}

int64_t resolve_global_batch(const Config& cfg, int world, const std::optional<ResumePoint>& resume) {
  const int64_t B = cfg.train.micro_batch;
  int64_t global_batch = cfg.train.global_batch > 0 ? cfg.train.global_batch : B * cfg.train.grad_accum * world;
  if (resume) {
    const int64_t saved = resume->meta.global_batch;
    if (cfg.train.global_batch > 0 && cfg.train.global_batch != saved)
      fail("train.global_batch is {} but checkpoint {} was trained with {}; the data stream and the optimizer "
           "continue only with the same global batch (set train.global_batch: {}, or checkpoint.resume: none)",
           cfg.train.global_batch, resume->dir.string(), saved, saved);
    global_batch = saved;
    if (global_batch % (B * world) != 0)
      fail("checkpoint {} was trained with global batch {}, which {} rank(s) x train.micro_batch {} cannot split into "
           "whole micro-batches; choose a micro_batch that divides {} / {}",
           resume->dir.string(), global_batch, world, B, global_batch, world);
  } else if (global_batch % (B * world) != 0) {
    fail("train.global_batch ({}) must be a multiple of train.micro_batch ({}) x world size ({})", global_batch, B,
         world);
  }
  return global_batch;
}

nlohmann::json loop_state(const Config& cfg, const DistributedSampler& sampler, int64_t num_samples,
                          const LrSchedule& schedule, int64_t step) {
  return {{"sampler",
           {{"seed", cfg.run.seed},
            {"shuffle", cfg.data.shuffle},
            {"num_samples", num_samples},
            {"consumed_samples", sampler.consumed_samples()},
            {"epoch", sampler.epoch()}}},
          {"lr_schedule",
           {{"kind", std::string(to_string(cfg.optim.schedule.kind))},
            {"lr", schedule.lr},
            {"min_lr", schedule.min_lr},
            {"warmup_steps", schedule.warmup_steps},
            {"total_steps", schedule.total_steps},
            {"next_step", step},
            {"next_lr", schedule.at(step)}}},
          // Every random draw (init, shuffling) is a counter-based Philox stream keyed by the
          // seed and its purpose: the seed is the whole RNG state.
          {"rng", {{"generator", "philox4x32-10"}, {"seed", cfg.run.seed}}}};
}

void check_stream_continues(const Config& cfg, const ResumePoint& resume, int64_t num_samples) {
  const std::string dir = resume.dir.string();
  const nlohmann::json& state = resume.meta.state;
  // The sampler's record, checked like the rest of meta.json: a bad value names the key.
  auto bad = [&](const std::string& what) -> void {
    fail("{}: sampler state {}", (resume.dir / kMetaFile).string(), what);
  };
  if (!state.contains("sampler") || !state.at("sampler").is_object()) bad("is missing");
  const nlohmann::json& s = state.at("sampler");
  auto count = [&](const char* key) {
    if (!s.contains(key) || !s.at(key).is_number_integer() || s.at(key).get<int64_t>() < 0)
      bad(fmt::format("`{}` is {}, expected a non-negative integer", key, s.contains(key) ? s.at(key).dump() : "missing"));
    return s.at(key).get<int64_t>();
  };
  const int64_t saved_samples = count("num_samples");
  count("epoch");
  if (count("consumed_samples") != resume.meta.consumed_samples)
    bad(fmt::format("`consumed_samples` is {}, meta.json's is {}", s.at("consumed_samples").get<int64_t>(),
                    resume.meta.consumed_samples));
  if (!s.contains("seed") || !s.at("seed").is_number_unsigned()) bad("`seed` is not a non-negative integer");
  if (!s.contains("shuffle") || !s.at("shuffle").is_boolean()) bad("`shuffle` is not true or false");
  if (saved_samples != num_samples)
    fail("checkpoint {} was trained on {} samples per epoch, this config gives {} (data.train or data.seq_len "
         "changed?); the sample stream cannot continue exactly",
         dir, saved_samples, num_samples);
  if (s.at("seed").get<uint64_t>() != cfg.run.seed)
    fail("run.seed is {} but checkpoint {} used {}; the shuffled sample stream would change", cfg.run.seed, dir,
         s.at("seed").get<uint64_t>());
  if (s.at("shuffle").get<bool>() != cfg.data.shuffle)
    fail("data.shuffle is {} but checkpoint {} was trained with {}", cfg.data.shuffle, dir, s.at("shuffle").get<bool>());
}

void trim_metrics(const fs::path& path, int64_t step) {
  if (!fs::exists(path)) return;
  std::istringstream in(read_text_file(path));
  std::string line, kept, dropped;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      if (nlohmann::json::parse(line).value("step", int64_t{0}) > step) {
        dropped += line + "\n";
        continue;
      }
    } catch (const std::exception&) {
      continue;  // a line torn by a crash
    }
    kept += line + "\n";
  }
  if (dropped.empty()) return;
  // The records past the checkpoint are trained again; the previous run's are kept beside.
  const fs::path aside = path.string() + ".replaced-" + std::to_string(std::time(nullptr));
  write_file_atomic(aside, dropped);
  write_file_atomic(path, kept);
  log::info("metrics.jsonl: the records after step {} are trained again; the previous ones are kept in {}", step,
            aside.string());
}

}  // namespace zt
