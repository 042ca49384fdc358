// Subcommands of the `zt` binary. Each takes the arguments after its name and returns the
// process exit code; bad input raises zt::Error, which main prints as one line.
#pragma once
#include <string>
#include <vector>

namespace zt {

using Args = std::vector<std::string>;

int cmd_train(const Args& args);
int cmd_export(const Args& args);
int cmd_generate(const Args& args);
int cmd_eval(const Args& args);  // `zt eval RUN_DIR|CHECKPOINT --data FILE`
int cmd_data(const Args& args);  // `zt data prepare ...`
int cmd_launch(const Args& args);
int cmd_ckpt(const Args& args);  // `zt ckpt inspect|verify DIR`
int cmd_trace(const Args& args);  // `zt trace merge DIR -o merged.json`
int cmd_plan(const Args& args);   // `zt plan CONFIG.yaml --world N [--budget B]`
int cmd_report(const Args& args);
int cmd_config(const Args& args);  // `zt config CONFIG.yaml [--set k=v]...`: the resolved config
// Path of the running zt binary (for relaunching itself under `zt launch`).
std::string self_executable();

}  // namespace zt
