// `zt config CONFIG.yaml [--set key=value]...`: the fully resolved config, every key, as YAML
// that `zt train` accepts back.
#include <cstdio>

#include "core/config.h"
#include "launch/cli.h"
#include "launch/commands.h"

namespace zt {

int cmd_config(const Args& args) {
  CliArgs cli("config", args, {}, {}, {"set"});
  cli.reject_bare_settings();
  cli.expect_positionals(1, 1);
  const Config config = load_config(cli.positional(0, "CONFIG.yaml"), cli.all("set"));
  std::fputs(dump_config(config).c_str(), stdout);
  return 0;
}

}  // namespace zt
