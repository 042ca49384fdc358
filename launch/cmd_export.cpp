#include <cstdio>
#include <filesystem>

#include "core/data/bpe.h"
#include "core/hf_config.h"
#include "launch/cli.h"
#include "launch/commands.h"
#include "launch/run_loader.h"
#include "model/hf_dir.h"
#include "model/hf_io.h"

namespace fs = std::filesystem;

namespace zt {

namespace {

// -o names a directory when it exists as one, ends in '/', or lacks the .safetensors suffix.
bool names_directory(const std::string& out) {
  return fs::is_directory(out) || out.ends_with('/') || !out.ends_with(".safetensors");
}

// The run's tokenizer files under the names transformers reads, and a note when it has none
// that transformers can load.
std::vector<std::pair<std::string, std::string>> tokenizer_copies(const Tokenizer* tokenizer, std::string* note) {
  const auto* bpe = dynamic_cast<const BpeTokenizer*>(tokenizer);
  if (bpe && bpe->source().format == "hf") return {{bpe->source().files[0], "tokenizer.json"}};
  if (bpe && bpe->source().format == "gpt2")
    return {{bpe->source().files[0], "vocab.json"}, {bpe->source().files[1], "merges.txt"}};
  *note = !tokenizer ? "the run has no tokenizer"
          : bpe      ? "a .tiktoken file has no Hugging Face form"
                     : "the run's " + tokenizer->kind() + " tokenizer has no Hugging Face form";
  return {};
}

}  // namespace

// Rebuilds the run's model from its config, loads its weights (checking every name and
// shape) and writes them with the family's Hugging Face names and layouts: one .safetensors
// file, or a directory transformers loads (config.json, weights, tokenizer). The source is a
// run directory (its model.safetensors) or a checkpoint of any world size and stage.
int cmd_export(const Args& args) {
  CliArgs cli("export", args, {"o", "output", "max-shard-size"});
  cli.expect_positionals(1, 1);
  const std::string out = cli.get("o").value_or(cli.get_or("output", ""));
  if (out.empty()) fail("zt export: missing -o OUTPUT.safetensors or -o DIR/");
  const bool to_dir = names_directory(out);
  if (!to_dir && cli.get("max-shard-size"))
    fail("zt export: --max-shard-size applies to a directory export (-o DIR/), not to {}", out);
  const int64_t max_shard = parse_shard_size(cli.get_or("max-shard-size", "5GB"));
  LoadedRun run = load_run(cli.positional(0, "RUN_DIR|CHECKPOINT_DIR"));
  const Transformer& model = run.model->model;
  const std::string family(family_name(model.spec().family));
  if (!to_dir) {
    save_hf_safetensors(model, out);
    std::printf("wrote %s (%s family, %lld parameters)\n", out.c_str(), family.c_str(),
                static_cast<long long>(model.num_params()));
    return 0;
  }
  // bos/eos ids are known when the run started from a Hugging Face directory that has them.
  const ModelConfig& m = run.config.model;
  const HfSpecialTokens special = is_hf_model_dir(m.init_from) ? hf_special_tokens(m.init_from) : HfSpecialTokens{};
  const std::string config_json = hf_config_text(m, special);
  std::string note;
  const auto copies = tokenizer_copies(run.tokenizer.get(), &note);
  write_hf_directory(model, out, config_json, copies, max_shard);
  std::string files = "config.json, " + std::string(fs::exists(fs::path(out) / "model.safetensors")
                                                        ? "model.safetensors"
                                                        : "sharded weights with model.safetensors.index.json");
  for (const auto& [source, name] : copies) files += ", " + name;
  std::printf("wrote %s (%s family, %lld parameters: %s)\n", out.c_str(), family.c_str(),
              static_cast<long long>(model.num_params()), files.c_str());
  if (!note.empty()) std::printf("no tokenizer files written: %s\n", note.c_str());
  return 0;
}

}  // namespace zt
