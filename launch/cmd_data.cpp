#include <glob.h>

#include <cstdio>
#include <filesystem>

#include "core/data/prepare.h"
#include "core/data/token_file.h"
#include "core/data/tokenizer.h"
#include "core/error.h"
#include "launch/cli.h"
#include "launch/commands.h"

namespace zt {

namespace {

constexpr const char* kUsage =
    "zt data prepare INPUT... [-o OUT_DIR] [--tokenizer char|byte|PATH] [--name NAME] [--val-fraction F] "
    "[--shard-tokens N]";

// An input with * ? or [ is a glob (quoted, so that the shell leaves it to us); it must match.
std::vector<std::string> expand_inputs(const std::vector<std::string>& args) {
  std::vector<std::string> files;
  for (const auto& a : args) {
    if (a.find_first_of("*?[") == std::string::npos) {
      files.push_back(a);
      continue;
    }
    glob_t g{};
    const int rc = glob(a.c_str(), 0, nullptr, &g);
    if (rc == GLOB_NOMATCH) fail("zt data prepare: {} matches no file", a);
    if (rc != 0) fail("zt data prepare: cannot expand {}", a);
    for (size_t i = 0; i < g.gl_pathc; ++i) files.emplace_back(g.gl_pathv[i]);  // sorted by glob
    globfree(&g);
  }
  return files;
}

}  // namespace

int cmd_data(const Args& args) {
  if (args.empty() || args[0] != "prepare") fail("zt data: expected '{}'", kUsage);
  CliArgs cli("data prepare", Args(args.begin() + 1, args.end()), {"o", "tokenizer", "val-fraction", "name", "shard-tokens"});
  cli.positional(0, "INPUT.txt");
  PrepareOptions o;
  o.inputs = expand_inputs(cli.positionals());
  const std::string tokenizer = cli.get_or("tokenizer", "char");
  const std::filesystem::path input_dir = std::filesystem::path(o.inputs[0]).parent_path();
  o.out_dir = cli.get_or("o", input_dir.empty() ? std::string(".") : input_dir.string());
  o.val_fraction = cli.get_double("val-fraction", 0.1);
  o.name = cli.get_or("name", o.inputs.size() == 1 ? "" : "corpus");
  // 0: one train file. llm.c's shards hold 100M tokens (--shard-tokens 100000000).
  o.shard_tokens = cli.get_int("shard-tokens", 0, 0, 2147483647);  // the header counts in int32
  o.progress = true;
  if (tokenizer != "char" && tokenizer != "byte" && tokenizer.find_first_of("/.") == std::string::npos)
    fail("zt data prepare: --tokenizer must be char, byte or the path of a tokenizer file (tokenizer.json, "
         "GPT-2 vocab.json with merges.txt, .tiktoken), got '{}'", tokenizer);
  const auto tok = tokenizer_for_inputs(tokenizer, o.inputs);
  const PreparedText p = prepare_corpus(*tok, o);
  const char* width = token_bits_for_vocab(p.vocab_size) == 16 ? "uint16" : "uint32";
  if (p.train_shards.size() > 1)
    std::printf("wrote %zu shards %s ... %s (%lld %s tokens)\n", p.train_shards.size(), p.train_shards.front().c_str(),
                p.train_shards.back().c_str(), static_cast<long long>(p.train_tokens), width);
  else
    std::printf("wrote %s (%lld %s tokens)\n", p.train_path.c_str(), static_cast<long long>(p.train_tokens), width);
  if (!p.val_path.empty())
    std::printf("wrote %s (%lld %s tokens)\n", p.val_path.c_str(), static_cast<long long>(p.val_tokens), width);
  std::printf("wrote %s (%s tokenizer, vocab %lld)\n", p.vocab_path.c_str(), tok->kind().c_str(),
              static_cast<long long>(p.vocab_size));
  return 0;
}

}  // namespace zt
