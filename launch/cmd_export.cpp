#include <cstdio>
#include <filesystem>

#include "launch/cli.h"
#include "launch/commands.h"
#include "launch/run_loader.h"
#include "model/hf_io.h"

namespace zt {

// Rebuilds the run's model from its config, loads its weights (checking every name and
// shape) and writes them with the family's Hugging Face names and layouts. The source is a
// run directory (its model.safetensors) or a checkpoint of any world size and stage.
int cmd_export(const Args& args) {
  CliArgs cli("export", args, {"o", "output"});
  cli.expect_positionals(1, 1);
  const std::string out = cli.get("o").value_or(cli.get_or("output", ""));
  if (out.empty()) fail("zt export: missing -o OUTPUT.safetensors");
  LoadedRun run = load_run(cli.positional(0, "RUN_DIR|CHECKPOINT_DIR"));
  save_hf_safetensors(run.model->model, out);
  std::printf("wrote %s (%s family, %lld parameters)\n", out.c_str(),
              std::string(family_name(run.model->model.spec().family)).c_str(),
              static_cast<long long>(run.model->model.num_params()));
  return 0;
}

}  // namespace zt
