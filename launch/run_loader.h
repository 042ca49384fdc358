// Opens trained weights for tools (export, generate): a finished run directory (config,
// tokenizer, model.safetensors) or a checkpoint of any world size.
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

// weights: a .safetensors file; empty means RUN_DIR/model.safetensors. A path that holds a
// checkpoint (meta.json), or a `latest` file naming one, loads the checkpoint instead: its
// config, the master weights gathered from every shard file, and the tokenizer of the run
// directory it lies in, if any.
LoadedRun load_run(const std::string& run_dir, const std::string& weights = "");

}  // namespace zt
