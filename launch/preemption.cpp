#include "launch/preemption.h"

#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <initializer_list>

namespace zt {

namespace {

volatile std::sig_atomic_t g_signal = 0;

void on_signal(int sig) {
  if (g_signal != 0) _exit(128 + sig);  // second signal: stop now, write nothing
  g_signal = sig;
}

}  // namespace

void install_preemption_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) sigaction(sig, &sa, nullptr);
}

int preemption_signal() { return g_signal; }

}  // namespace zt
