// Preemption: SIGTERM, SIGINT or SIGUSR1 asks the run to finish its step, save a
// checkpoint and exit with kExitPreempted. A second signal exits at once (128 + signal),
// leaving `latest` as it was.
#pragma once

namespace zt {

// Exit code of a run that stopped on a signal after saving its checkpoint (EX_TEMPFAIL:
// run the same command again to resume).
inline constexpr int kExitPreempted = 75;

// Call before starting any thread (see preemption.cpp).
void install_preemption_handlers();
// The first signal received, or 0.
int preemption_signal();

}  // namespace zt
