#include "launch/run_loader.h"

#include <filesystem>

#include "launch/train_setup.h"
#include "model/hf_io.h"

namespace fs = std::filesystem;

namespace zt {

LoadedRun load_run(const std::string& run_dir, const std::string& weights) {
  if (!fs::is_directory(run_dir)) fail("run directory not found: {}", run_dir);
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
