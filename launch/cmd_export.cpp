#include <cstdio>
#include <filesystem>

#include "core/data/bpe.h"
#include "core/data/hf_tokenizer_json.h"
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

// The run's tokenizer as files transformers reads: its tokenizer.json or GPT-2 files copied
// (`copies`: source, name), or a tokenizer.json written for it (`texts`: name, content).
struct TokenizerFiles {
  std::vector<std::pair<std::string, std::string>> copies, texts;
};

TokenizerFiles tokenizer_files(const Tokenizer& tokenizer) {
  const auto* bpe = dynamic_cast<const BpeTokenizer*>(&tokenizer);
  if (bpe && bpe->source().format == "hf") return {{{bpe->source().files[0], "tokenizer.json"}}, {}};
  if (bpe && bpe->source().format == "gpt2")
    return {{{bpe->source().files[0], "vocab.json"}, {bpe->source().files[1], "merges.txt"}}, {}};
  return {{}, {{"tokenizer.json", hf_tokenizer_json(tokenizer)}}};
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
  const TokenizerFiles tokenizer = run.tokenizer ? tokenizer_files(*run.tokenizer) : TokenizerFiles{};
  write_hf_directory(model, out, config_json, tokenizer.copies, max_shard, tokenizer.texts);
  std::string files = "config.json, " + std::string(fs::exists(fs::path(out) / "model.safetensors")
                                                        ? "model.safetensors"
                                                        : "sharded weights with model.safetensors.index.json");
  for (const auto& [source, name] : tokenizer.copies) files += ", " + name;
  for (const auto& [name, content] : tokenizer.texts)
    files += ", " + name + " (written for the run's " + (run.tokenizer->kind() == "bpe" ? "tiktoken" : run.tokenizer->kind()) + " tokenizer)";
  std::printf("wrote %s (%s family, %lld parameters: %s)\n", out.c_str(), family.c_str(),
              static_cast<long long>(model.num_params()), files.c_str());
  if (!run.tokenizer) std::printf("no tokenizer files written: the run has no tokenizer\n");
  return 0;
}

}  // namespace zt
