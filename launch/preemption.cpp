#include "launch/preemption.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

namespace zt {

namespace {

std::atomic<int> g_signal{0};

}  // namespace

// No handler runs on a compute thread: a handler borrows the interrupted thread's stack below
// its stack pointer, where oneDNN's JIT kernels read (valgrind shows them there), and with a
// handler a signal corrupted the heap about one run in seven (glibc "corrupted size vs.
// prev_size", "free(): invalid pointer"; none in 14 runs without one). Instead every thread blocks the
// signals (threads inherit the mask of the thread that creates them, so this runs before the
// communicator, OpenMP and oneDNN start any) and one watcher thread takes them with sigwait.
void install_preemption_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGTERM, SIGINT, SIGUSR1}) sigaddset(&set, sig);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::thread([set] {
      for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (g_signal.load() != 0) _exit(128 + sig);  // second signal: stop now, write nothing
        g_signal.store(sig);
      }
    }).detach();
  });
}

int preemption_signal() { return g_signal.load(); }

}  // namespace zt
