// The `zt` command line: one binary for training, launching, data, export, evaluation and inspection.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "core/config_docs.h"
#include "core/cpu/isa.h"
#ifdef ZT_WITH_CUDA
#include "core/cuda/runtime.h"
#endif
#include "core/error.h"
#include "launch/commands.h"

namespace {

constexpr const char* kUsage = R"(usage: zt <command> [args]      zt <command> --help: that command's usage
       zt --version                   version, commit, build, CPU kernels

commands:
  train CONFIG.yaml [--set key=value]... [--nproc-per-node N] [--dry-run]
                                            train a model (progress, metrics, final weights);
                                            --dry-run: every check a start makes, and the plan,
                                            writing nothing; --help lists every config key
  config CONFIG.yaml [--set key=value]...   the resolved config: every key, as YAML train accepts
  launch --nproc-per-node N [--nnodes M --node-rank R --master-addr A --master-port P]
         [--max-restarts K] [--stop-timeout S] -- CMD ...
                                            start N workers per node, torchrun-style
  generate RUN_DIR --prompt TEXT [--tokens N --temperature T --top-k K --seed S]
  export RUN_DIR|CHECKPOINT -o model.safetensors | -o DIR/ [--max-shard-size 5GB]
                                            weights with Hugging Face names, or a directory
                                            transformers loads (config.json, shards, tokenizer)
  eval RUN_DIR|CHECKPOINT --data FILE [--batches N] [--batch-size B] [--seq-len T] [--json]
                                            loss and perplexity on a token file or text, as the
                                            trainer's val loss computes them; --data may also be
                                            a directory of *val*.bin shards, a glob, or repeated
  ckpt inspect DIR                          step, world, stage, parameters, files, checksums
  ckpt verify DIR                           check every file of one or all checkpoints
  plan CONFIG.yaml --world N [--budget 16GiB] [--device cpu|cuda] [--set key=value]...
                                            per-rank memory by stage, precision and checkpointing
                                            (--device: CPU or GPU kernels; default runtime.device)
  trace merge DIR [-o merged.json]          every rank's trace of a profiled window on one timeline
  data prepare INPUT... [-o DIR] [--tokenizer char|byte|PATH] [--name NAME] [--val-fraction F]
               [--shard-tokens N]           text files or quoted globs -> token files + tokenizer;
                                            N > 0 writes NAME.train.000000.bin, ... of N tokens
  report RUN_DIR [-o report.html]           one self-contained HTML page of a run's metrics
)";

// The usage entries of one command, from kUsage (an entry starts with two spaces and the
// command; its continuation lines are indented further), each prefixed with "zt".
std::string usage_of(const std::string& command) {
  std::string out, line;
  bool in_entry = false;
  for (const char* p = kUsage; *p; ++p) {
    if (*p != '\n') {
      line += *p;
      continue;
    }
    const bool entry = line.size() > 2 && line.compare(0, 2, "  ") == 0 && line[2] != ' ';
    if (entry) in_entry = line.compare(2, command.size() + 1, command + " ") == 0 || line.substr(2) == command;
    else if (line.compare(0, 3, "   ") != 0) in_entry = false;
    if (in_entry) out += (entry ? "  zt " + line.substr(2) : "   " + line) + "\n";
    line.clear();
  }
  return out;
}

// -h or --help among a command's own arguments (not after "--", which starts what `zt launch`
// runs).
bool wants_help(int argc, char** argv) {
  for (int i = 2; i < argc && std::strcmp(argv[i], "--") != 0; ++i)
    if (!std::strcmp(argv[i], "-h") || !std::strcmp(argv[i], "--help")) return true;
  return false;
}

// Set by CMake for this target; the fallbacks keep other builds of this file compiling.
#ifndef ZT_VERSION
#define ZT_VERSION "unknown"
#endif
#ifndef ZT_GIT_COMMIT
#define ZT_GIT_COMMIT "unknown"
#endif
#ifndef ZT_BUILD_TYPE
#define ZT_BUILD_TYPE "unknown"
#endif
#ifndef ZT_COMPILER
#define ZT_COMPILER "unknown"
#endif

std::string cuda_description() {
#ifdef ZT_WITH_CUDA
  const int n = zt::cuda::device_count();
  std::string s = "runtime " + zt::cuda::runtime_version() + ", " + std::to_string(n) + " device" + (n == 1 ? "" : "s");
  if (n == 0) s += " (" + zt::cuda::unavailable_reason() + ")";
  return s;
#else
  return "not built";
#endif
}

int print_version() {
  std::printf("zt %s\ncommit: %s\nbuild: %s, %s\ncpu kernels: %s\ncuda: %s\n", ZT_VERSION, ZT_GIT_COMMIT,
              ZT_BUILD_TYPE, ZT_COMPILER, zt::cpu::isa_description().c_str(), cuda_description().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  if (wants_help(argc, argv)) {
    const std::string usage = usage_of(command);
    if (usage.empty()) {
      std::fprintf(stderr, "zt: unknown command '%s'\n\n%s", command.c_str(), kUsage);
      return 2;
    }
    std::printf("usage:\n%s", usage.c_str());
    // The config keys, from the schema, for the commands that read a config.
    if (command == "train" || command == "config") std::printf("\n%s", zt::config_reference().c_str());
    return 0;
  }
  const zt::Args args(argv + 2, argv + argc);
  try {
    if (command == "--version" || command == "version") return print_version();
    if (command == "train") return zt::cmd_train(args);
    if (command == "config") return zt::cmd_config(args);
    if (command == "generate") return zt::cmd_generate(args);
    if (command == "export") return zt::cmd_export(args);
    if (command == "eval") return zt::cmd_eval(args);
    if (command == "data") return zt::cmd_data(args);
    if (command == "launch") return zt::cmd_launch(args);
    if (command == "ckpt") return zt::cmd_ckpt(args);
    if (command == "trace") return zt::cmd_trace(args);
    if (command == "plan") return zt::cmd_plan(args);
    if (command == "report") return zt::cmd_report(args);
    std::fprintf(stderr, "zt: unknown command '%s'\n\n%s", command.c_str(), kUsage);
    return 2;
  } catch (const zt::ReportedError&) {
    return 1;  // printed already, by this rank or another
  } catch (const zt::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
