#include "core/config.h"
#include "core/log.h"
#include "launch/cli.h"
#include "launch/commands.h"
#include "launch/launcher.h"
#include "launch/preemption.h"
#include "launch/trainer.h"

namespace zt {

int cmd_train(const Args& args) {
  CliArgs cli("train", args, {"nproc-per-node"}, {}, {"set"});
  cli.expect_positionals(1, 1);
  Config config = load_config(cli.positional(0, "CONFIG.yaml"), cli.all("set"));
  // `zt train --nproc-per-node N cfg` is `zt launch --nproc-per-node N -- zt train cfg`.
  if (auto n = cli.get("nproc-per-node")) {
    LaunchOptions o;
    o.nproc_per_node = static_cast<int>(cli.get_int("nproc-per-node", 1, 1, 4096));
    o.command = {self_executable(), "train", cli.positional(0, "CONFIG.yaml")};
    for (const auto& s : cli.all("set")) o.command.insert(o.command.end(), {"--set", s});
    return run_launcher(o);
  }
  return run_training(config).preempted ? kExitPreempted : 0;
}

}  // namespace zt
