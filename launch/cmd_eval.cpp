#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>

#include "core/data/token_shards.h"
#include "core/error.h"
#include "core/fileio.h"
#include "core/kernels.h"
#include "core/log.h"
#include "launch/cli.h"
#include "launch/commands.h"
#include "launch/eval_loss.h"
#include "launch/run_loader.h"
#include "launch/train_setup.h"

namespace fs = std::filesystem;

namespace zt {

namespace {

bool has_llmc_magic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  int32_t magic = 0;
  return in.read(reinterpret_cast<char*>(&magic), 4) && magic == kTokenFileMagic;
}

// --data as tokens: token files (an llm.c header, a .bin name, any file for a run that
// trained on token files, or several files: a directory's *val*.bin shards, a glob, --data
// given more than once), else a text encoded with the run's tokenizer, as training would.
std::vector<TokenRange> read_tokens(const std::vector<std::string>& spec, const LoadedRun& run) {
  const int64_t vocab = run.model->model.spec().vocab_size;
  const DataConfig& data = run.config.data;
  const bool token_run = data.tokenizer_kind() == TokenizerKind::none;
  const TokenFormat format = token_run ? data.format : TokenFormat::automatic;
  std::vector<TokenRange> ranges;
  if (names_several_files(spec)) {
    const std::vector<std::string> files = resolve_token_files(spec, "zt eval: --data", "val");
    // Several files are token shards: a text among them must not pass for headerless tokens.
    for (const auto& f : files)
      if (!token_run && !has_llmc_magic(f) && fs::path(f).extension() != ".bin")
        fail("zt eval: --data {}: several files are read as token files, and this one has neither an llm.c "
             "header nor a .bin name", f);
    for (const auto& f : open_token_files(files, vocab, format)) ranges.push_back({f, 0, f->size()});
    return ranges;
  }
  const std::string& path = spec[0];
  if (!fs::is_regular_file(path)) fail("zt eval: --data file not found: {}", path);
  std::shared_ptr<const TokenFile> tokens;
  if (token_run || has_llmc_magic(path) || fs::path(path).extension() == ".bin") {
    tokens = std::make_shared<TokenFile>(TokenFile::open(path, vocab, format));
  } else {
    if (!run.tokenizer)
      fail("zt eval: {} is not a token file (.bin) and the run has no tokenizer (vocab.json) to read it as text", path);
    if (run.tokenizer->vocab_size() > vocab)
      fail("zt eval: the run's tokenizer has {} ids but the model only {}: the tokenizer is not the one the model "
           "was trained with", run.tokenizer->vocab_size(), vocab);
    std::vector<uint32_t> ids;
    try {
      ids = run.tokenizer->encode(read_text_file(path));
    } catch (const Error& e) {
      fail("{}: {}", path, e.what());
    }
    tokens = std::make_shared<TokenFile>(TokenFile::from_tokens(path, std::move(ids)));
  }
  ranges.push_back({tokens, 0, tokens->size()});
  return ranges;
}

// Mixed-precision runs evaluated as the trainer does: matmuls read a copy of the weights in
// the compute dtype, and saved activations are stored in it (see Engine::refresh_compute).
void use_compute_dtype(LocalModel& local, DType dtype) {
  if (dtype == DType::f32) return;
  local.model.set_activation_dtype(dtype);
  std::vector<Unit*> units = local.model.units();
  for (size_t u = 0; u < units.size(); ++u) {
    Tensor copy = Tensor::empty({units[u]->numel()}, dtype, MemTag::params);
    convert(copy, local.params[u]);
    units[u]->bind_compute(copy);
  }
}

}  // namespace

// The mean per-token loss of a trained model on a file, over the same micro-batches the
// trainer's evaluation reads (eval_sample_batches), so `--batches train.eval_batches` on the
// run's val file reproduces its last val_loss.
int cmd_eval(const Args& args) {
  CliArgs cli("eval", args, {"batches", "batch-size", "seq-len"}, {"json"}, {"data"});
  // Notes (such as reading a headerless nanoGPT file) go to stderr: stdout holds the result.
  spdlog::set_default_logger(spdlog::stderr_color_mt("zt eval"));
  cli.expect_positionals(1, 1);
  const std::vector<std::string> data_spec = cli.all("data");
  if (data_spec.empty()) fail("zt eval: missing --data FILE");
  const std::string data_path = data_spec.size() == 1 ? data_spec[0] : fmt::format("{} files", data_spec.size());
  // 0: the whole file.
  const int64_t batches = cli.get("batches") ? cli.get_int("batches", 0, 1, int64_t(1) << 40) : 0;
  LoadedRun run = load_run(cli.positional(0, "RUN_DIR|CHECKPOINT_DIR"));
  const ModelSpec& spec = run.model->model.spec();
  const int64_t B = cli.get_int("batch-size", run.config.train.micro_batch, 1, kMaxCount);
  const int64_t T = cli.get_int("seq-len", run.config.data.seq_len, 1, spec.max_seq_len);
  std::vector<TokenRange> tokens = read_tokens(data_spec, run);
  if (tokens.size() == 1 && tokens[0].end < T + 1)
    fail("zt eval: {} has {} tokens, fewer than one sample of seq_len {} + 1", data_path, tokens[0].end, T);
  const TokenDataset dataset(std::move(tokens), T, "eval");
  use_compute_dtype(*run.model, dtype_of(run.config.precision.compute));

  const auto sample_batches = eval_sample_batches(dataset.num_samples(), B, batches);
  if (sample_batches.empty())
    fail("zt eval: {} holds {} samples of {} tokens, fewer than one batch of {}", data_path, dataset.num_samples(), T,
         B);
  const EvalResult r = evaluate_loss(run.model->model, nullptr, dataset, sample_batches);
  const double perplexity = std::exp(r.loss);
  if (cli.has("json")) {
    const nlohmann::json line = {{"loss", r.loss},       {"perplexity", perplexity},
                                 {"tokens", r.tokens},   {"samples", r.samples},
                                 {"batches", static_cast<int64_t>(sample_batches.size())},
                                 {"seq_len", T},         {"data", data_path}};
    std::printf("%s\n", line.dump().c_str());
  } else {
    std::printf("loss %.6f | perplexity %.4f | %lld tokens (%lld samples of %lld in %zu batches) | %s\n", r.loss,
                perplexity, static_cast<long long>(r.tokens), static_cast<long long>(r.samples),
                static_cast<long long>(T), sample_batches.size(), data_path.c_str());
  }
  return 0;
}

}  // namespace zt
