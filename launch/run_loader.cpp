#include "launch/run_loader.h"

#include <filesystem>

#include "core/log.h"
#include "launch/train_setup.h"
#include "model/hf_io.h"
#include "parallel/checkpoint.h"

namespace fs = std::filesystem;

namespace zt {

namespace {

bool holds_checkpoint(const fs::path& p) {
  return fs::exists(p / kMetaFile) || fs::exists(p / kLatestFile) || !list_checkpoints(p).empty();
}

LoadedRun load_checkpoint(const fs::path& path) {
  const fs::path dir = fs::exists(path / kMetaFile) || fs::exists(path / kLatestFile)
                           ? resolve_checkpoint_path(path)
                           : list_checkpoints(path).front().dir;
  const std::vector<std::string> problems = verify_checkpoint(dir);
  if (!problems.empty()) throw CheckpointCorrupt(fmt::format("checkpoint {} failed verification: {}", dir.string(), problems[0]));
  const CheckpointMeta meta = read_meta(dir);
  LoadedRun run;
  run.config = parse_config(meta.config_yaml, (dir / kMetaFile).string() + " (config)");
  run.model = std::make_unique<LocalModel>(model_spec(run.config));
  std::vector<CkptUnit> units = describe_units(run.model->model);
  check_same_model(meta, units, dir);
  CheckpointReader reader(dir, meta);
  for (size_t u = 0; u < units.size(); ++u)
    reader.read(static_cast<int>(u), "params", 0, units[u].numel, run.model->params[u].data<float>());
  // ROOT/step-N inside RUN_DIR/checkpoints: the run's vocabulary, when it had one.
  const fs::path vocab = fs::absolute(dir).parent_path().parent_path() / "vocab.json";
  if (fs::exists(vocab)) run.tokenizer = load_tokenizer(vocab.string());
  return run;
}

}  // namespace

LoadedRun load_run(const std::string& run_dir, const std::string& weights) {
  if (!fs::is_directory(run_dir)) fail("run directory not found: {}", run_dir);
  if (weights.empty() && !fs::exists(fs::path(run_dir) / "config.yaml") && holds_checkpoint(run_dir))
    return load_checkpoint(run_dir);
  const fs::path config_path = fs::path(run_dir) / "config.yaml";
  if (!fs::exists(config_path)) fail("{}: no config.yaml (not a zt run directory)", run_dir);
  LoadedRun run;
  run.config = load_config(config_path.string());
  const fs::path vocab = fs::path(run_dir) / "vocab.json";
  if (fs::exists(vocab)) run.tokenizer = load_tokenizer(vocab.string());
  const std::string weights_path =
      weights.empty() ? (fs::path(run_dir) / "model.safetensors").string() : weights;
  if (!fs::exists(weights_path))
    fail("{}: no weights at {} (did the run finish?)", run_dir, weights_path);
  run.model = std::make_unique<LocalModel>(model_spec(run.config));
  load_hf_safetensors(run.model->model, weights_path);
  return run;
}

}  // namespace zt
