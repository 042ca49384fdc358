// `zt plan CONFIG.yaml --world N [--budget 16GiB] [--device cpu|cuda] [--set k=v]...`: the
// expected per-rank memory of the config's run for every ZeRO stage, precision and
// activation-checkpointing choice, on CPUs or GPUs, and the largest micro-batch that fits a
// budget, before anything is launched.
#include <cstdio>
#include <string>

#include "core/error.h"
#include "launch/cli.h"
#include "launch/commands.h"
#include "launch/memory_plan.h"
#include "launch/train_data.h"
#include "launch/train_setup.h"
#include "model/transformer.h"

namespace zt {

namespace {

// "16GiB", "512MiB", "2.5GB", "1000000" (bytes).
int64_t parse_bytes(const std::string& text) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    fail("--budget '{}': expected a size such as 16GiB, 512MiB or 2.5GB", text);
  }
  const std::string unit = text.substr(used);
  double scale = 0;
  for (const auto& [name, s] : {std::pair{"", 1.0}, {"B", 1.0}, {"KiB", 1024.0}, {"MiB", 1048576.0},
                                {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}, {"KB", 1e3}, {"MB", 1e6},
                                {"GB", 1e9}, {"TB", 1e12}})
    if (unit == name) scale = s;
  if (scale == 0 || !(value > 0)) fail("--budget '{}': expected a size such as 16GiB, 512MiB or 2.5GB", text);
  if (value * scale >= 0x1p62) fail("--budget '{}' is larger than any machine's memory (at most 4 EiB)", text);
  return static_cast<int64_t>(value * scale);
}

std::string mib(int64_t bytes) {
  const double m = bytes / 1048576.0;
  return m < 10 ? fmt::format("{:.2f}", m) : fmt::format("{:.0f}", m);
}

}  // namespace

int cmd_plan(const Args& args) {
  CliArgs cli("plan", args, {"world", "budget", "device"}, {}, {"set"});
  cli.reject_bare_settings();
  cli.expect_positionals(1, 1);
  Config cfg = load_config(cli.positional(0, "CONFIG.yaml"), cli.all("set"));
  const int64_t world = cli.get_int("world", 1, 1, 1 << 20);
  const int64_t budget = cli.get("budget") ? parse_bytes(*cli.get("budget")) : 0;
  const DataPlan data = plan_data(cfg.data, cfg.model.vocab_size);
  cfg.model.vocab_size = data.vocab_size;
  PlanInput base = plan_input(cfg, static_cast<int>(world));
  if (const auto device = cli.get("device")) {  // else the config's runtime.device
    if (*device != "cpu" && *device != "cuda") fail("--device '{}': expected cpu or cuda", *device);
    base.cuda = *device == "cuda";
  }
  const ModelSpec& spec = base.spec;

  std::string features;
  if (spec.attn_gate) features += ", gated attention";
  if (spec.workers())
    features += fmt::format(", workers every {} (conv mixer of {} taps)", spec.worker_interval, spec.worker_conv_width);
  if (spec.n_experts > 0) {
    // Per token an MoE block runs top_k of its n_experts: the rest of the experts are idle.
    const int64_t idle = spec.num_moe_layers() * (spec.n_experts - spec.moe_top_k) * 3 * spec.d_model * spec.d_ff;
    features += fmt::format(", MoE in {} of {} blocks: {} experts, top {}{}, {} active params per token",
                            spec.num_moe_layers(), spec.n_layer, spec.n_experts, spec.moe_top_k,
                            spec.n_shared_experts > 0 ? fmt::format(", {} shared", spec.n_shared_experts) : "",
                            Transformer(spec).num_params() - idle);
  }
  std::printf("zt plan: %s, %lld params%s, micro_batch %lld x %lld tokens, %lld rank(s) on %s, gradients reduced "
              "in %s; MiB per rank\n",
              cfg.run.name.c_str(), static_cast<long long>(Transformer(spec).num_params()), features.c_str(),
              static_cast<long long>(base.micro_batch), static_cast<long long>(base.seq_len),
              static_cast<long long>(world), base.cuda ? "GPUs (one each)" : "CPUs",
              std::string(to_string(base.reduce)).c_str());
  std::printf("data: %s\n", data.summary.c_str());
  std::printf("%-5s %-9s %-11s %8s %8s %9s %11s %9s %8s %8s", "stage", "precision", "act. ckpt", "params", "grads",
              "optimizer", "activations", "workspace", "comm", "total");
  if (budget) std::printf(" | max micro_batch in %s MiB", mib(budget).c_str());
  std::printf("\n");
  const MemoryConfig none{};
  MemoryConfig all_blocks;
  all_blocks.activation_checkpointing = ActivationCheckpointing::all;
  for (int stage = 0; stage <= 3; ++stage)
    for (Precision precision : {Precision::fp32, Precision::bf16, Precision::fp16})
      for (const MemoryConfig* memory : {&none, static_cast<const MemoryConfig*>(&all_blocks)}) {
        PlanInput in = base;
        in.stage = stage;
        in.compute = precision;
        in.checkpointed = checkpointed_layers(*memory, spec.n_layer);
        const PlanBytes p = plan_memory(in);
        const bool chosen = stage == cfg.parallel.zero_stage && precision == cfg.precision.compute &&
                            memory->activation_checkpointing == cfg.memory.activation_checkpointing;
        auto b = [&](MemTag t) { return mib(p.by_tag[static_cast<int>(t)]); };
        std::printf("%-5d %-9s %-11s %8s %8s %9s %11s %9s %8s %8s", stage, std::string(to_string(precision)).c_str(),
                    std::string(to_string(memory->activation_checkpointing)).c_str(), b(MemTag::params).c_str(),
                    b(MemTag::grads).c_str(), b(MemTag::optimizer).c_str(), b(MemTag::activations).c_str(),
                    b(MemTag::workspace).c_str(), b(MemTag::comm).c_str(), mib(p.total()).c_str());
        if (budget) std::printf(" | %lld", static_cast<long long>(largest_micro_batch(in, budget)));
        std::printf("%s\n", chosen ? "   <- this config" : "");
      }
  return 0;
}

}  // namespace zt
