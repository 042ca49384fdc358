#include <unistd.h>

#include <algorithm>
#include <climits>
#include <set>

#include "core/error.h"
#include "launch/cli.h"
#include "launch/commands.h"
#include "launch/launcher.h"

namespace zt {

namespace {

LaunchOptions launch_options(const CliArgs& cli) {
  LaunchOptions o;
  o.nproc_per_node = static_cast<int>(cli.get_int("nproc-per-node", 1, 1, 4096));
  o.nnodes = static_cast<int>(cli.get_int("nnodes", 1, 1, 1 << 20));
  o.node_rank = static_cast<int>(cli.get_int("node-rank", 0, 0, o.nnodes - 1));
  o.master_addr = cli.get_or("master-addr", "127.0.0.1");
  o.master_port = static_cast<int>(cli.get_int("master-port", 29500, 1, 65535));
  o.max_restarts = static_cast<int>(cli.get_int("max-restarts", 0, 0, 1 << 20));
  o.stop_timeout_s = cli.get_double("stop-timeout", 300, 0, 1e9);
  return o;
}

const std::set<std::string> kLaunchFlags = {"nproc-per-node", "nnodes", "node-rank", "master-addr", "master-port",
                                            "max-restarts", "stop-timeout"};

}  // namespace

// zt launch --nproc-per-node N [--nnodes M --node-rank R --master-addr A --master-port P]
//           [--max-restarts K] [--stop-timeout SECONDS] -- CMD ...
int cmd_launch(const Args& args) {
  auto sep = std::find(args.begin(), args.end(), "--");
  if (sep == args.end()) fail("zt launch: put the worker command after '--' (zt launch --nproc-per-node 2 -- zt train cfg.yaml)");
  CliArgs cli("launch", Args(args.begin(), sep), kLaunchFlags);
  cli.expect_positionals(0, 0);
  LaunchOptions o = launch_options(cli);
  o.command.assign(sep + 1, args.end());
  return run_launcher(o);
}

std::string self_executable() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "zt";
  return std::string(buf, n);
}

}  // namespace zt
