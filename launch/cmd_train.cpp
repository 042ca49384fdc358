#include "core/config.h"
#include "core/log.h"
#include "launch/cli.h"
#include "launch/commands.h"
#include "launch/trainer.h"

namespace zt {

int cmd_train(const Args& args) {
  CliArgs cli("train", args, {}, {}, {"set"});
  cli.expect_positionals(1, 1);
  Config config = load_config(cli.positional(0, "CONFIG.yaml"), cli.all("set"));
  run_training(config);
  return 0;
}

}  // namespace zt
