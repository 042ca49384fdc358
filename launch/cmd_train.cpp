#include <cstdio>
#include <exception>

#include "core/config.h"
#include "core/log.h"
#include "core/runtime.h"
#include "launch/cli.h"
#include "launch/commands.h"
#include "launch/launcher.h"
#include "launch/preemption.h"
#include "launch/train_preflight.h"
#include "launch/trainer.h"

namespace zt {

namespace {

// Every check a start makes, for `world` ranks on one node, and the plan; writes nothing.
int dry_run(const Config& config, int world, int local_world) {
  std::unique_ptr<Communicator> comm = make_single_process_comm();
  const TrainPreflight preflight = preflight_training(config, *comm, world, /*local_rank=*/0, local_world);
  std::fputs(describe_preflight(preflight, world).c_str(), stdout);
  return 0;
}

// Every rank of a job reads the same config and finds the same error in it: under a launcher
// the ranks connect (with the default parallel settings) so that one of them reports it.
[[noreturn]] void report_config_error_once(std::exception_ptr error) {
  const RankInfo where = discover_rank();
  if (where.world_size <= 1) std::rethrow_exception(error);
  const ParallelConfig defaults;
  std::unique_ptr<Communicator> comm;
  try {
    comm = make_communicator(defaults.backend, where, defaults.timeout_s);
  } catch (const std::exception&) {
    std::rethrow_exception(error);  // no way to connect (a launcher zt does not join): every rank says it
  }
  check_together(*comm, [&] { std::rethrow_exception(error); });
  std::rethrow_exception(error);  // not reached: check_together raised
}

}  // namespace

int cmd_train(const Args& args) {
  CliArgs cli("train", args, {"nproc-per-node"}, {"dry-run"}, {"set"});
  cli.reject_bare_settings();
  cli.expect_positionals(1, 1);
  const auto nproc = cli.get("nproc-per-node");
  Config config;
  try {
    config = load_config(cli.positional(0, "CONFIG.yaml"), cli.all("set"));
  } catch (const Error&) {
    if (nproc || cli.has("dry-run")) throw;
    report_config_error_once(std::current_exception());
  }
  const int nproc_per_node = static_cast<int>(cli.get_int("nproc-per-node", 1, 1, 4096));
  if (cli.has("dry-run")) {
    const RankInfo where = discover_rank();
    return nproc ? dry_run(config, nproc_per_node, nproc_per_node)
                 : dry_run(config, where.world_size, where.local_world_size);
  }
  // `zt train --nproc-per-node N cfg` is `zt launch --nproc-per-node N -- zt train cfg`.
  if (nproc) {
    LaunchOptions o;
    o.nproc_per_node = nproc_per_node;
    o.command = {self_executable(), "train", cli.positional(0, "CONFIG.yaml")};
    for (const auto& s : cli.all("set")) o.command.insert(o.command.end(), {"--set", s});
    return run_launcher(o);
  }
  return run_training(config).preempted ? kExitPreempted : 0;
}

}  // namespace zt
