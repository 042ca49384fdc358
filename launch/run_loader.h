// Opens a finished run directory: its resolved config, tokenizer and weights.
#pragma once
#include <memory>
#include <string>

#include "core/config.h"
#include "core/data/tokenizer.h"
#include "model/transformer.h"

namespace zt {

struct LoadedRun {
  Config config;
  std::unique_ptr<Tokenizer> tokenizer;  // null when the run trained on token ids only
  std::unique_ptr<LocalModel> model;
};

// weights: a .safetensors file; empty means RUN_DIR/model.safetensors.
LoadedRun load_run(const std::string& run_dir, const std::string& weights = "");

}  // namespace zt
