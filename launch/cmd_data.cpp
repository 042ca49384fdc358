#include <cstdio>
#include <filesystem>

#include "core/data/dataset.h"
#include "launch/cli.h"
#include "launch/commands.h"

namespace zt {

// zt data prepare INPUT.txt [-o OUT_DIR] [--tokenizer char|byte] [--val-fraction F]
int cmd_data(const Args& args) {
  if (args.empty() || args[0] != "prepare")
    fail("zt data: expected 'zt data prepare INPUT.txt [-o OUT_DIR] [--tokenizer char|byte] [--val-fraction F]'");
  CliArgs cli("data prepare", Args(args.begin() + 1, args.end()), {"o", "tokenizer", "val-fraction"});
  const std::string input = cli.positional(0, "INPUT.txt");
  cli.expect_positionals(1, 1);
  const std::string tokenizer = cli.get_or("tokenizer", "char");
  if (tokenizer != "char" && tokenizer != "byte")
    fail("zt data prepare: --tokenizer must be char or byte, got '{}'", tokenizer);
  const std::filesystem::path input_dir = std::filesystem::path(input).parent_path();
  const std::string out_dir = cli.get_or("o", input_dir.empty() ? std::string(".") : input_dir.string());
  const double val_fraction = cli.get_double("val-fraction", 0.1);
  const PreparedText p = prepare_text(input, tokenizer, out_dir, val_fraction);
  std::printf("wrote %s (%lld tokens)\n", p.train_path.c_str(), static_cast<long long>(p.train_tokens));
  if (!p.val_path.empty())
    std::printf("wrote %s (%lld tokens)\n", p.val_path.c_str(), static_cast<long long>(p.val_tokens));
  std::printf("wrote %s (%s tokenizer, vocab %lld)\n", p.vocab_path.c_str(), tokenizer.c_str(),
              static_cast<long long>(p.vocab_size));
  return 0;
}

}  // namespace zt
