#include "core/data/mapped_files.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>

namespace zt {

namespace {

// A fixed table the handler can read without locks or allocation: slots are claimed under a
// mutex, and `begin` is published last (and cleared first) so a half-written slot is never
// matched.
struct Slot {
  std::atomic<uintptr_t> begin{0};
  size_t bytes = 0;
  char message[640] = {};
};
constexpr int kSlots = 64;
Slot g_slots[kSlots];
std::mutex g_mu;
std::once_flag g_installed;

void on_sigbus(int sig, siginfo_t* info, void*) {
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  for (const Slot& s : g_slots) {
    const uintptr_t b = s.begin.load(std::memory_order_acquire);
    if (b != 0 && addr >= b && addr < b + s.bytes) {
      const ssize_t unused = ::write(STDERR_FILENO, s.message, std::strlen(s.message));
      (void)unused;
      ::_exit(1);
    }
  }
  ::signal(sig, SIG_DFL);  // not ours: the default action, on return, when the access repeats
}

void install() {
  struct sigaction sa {};
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGBUS, &sa, nullptr);
}

}  // namespace

void register_mapping(const void* begin, size_t bytes, const std::string& path) {
  std::call_once(g_installed, install);
  std::lock_guard<std::mutex> lock(g_mu);
  for (Slot& s : g_slots) {
    if (s.begin.load(std::memory_order_relaxed) != 0) continue;
    s.bytes = bytes;
    const std::string text = "error: " + path +
                             " shrank while it was being read (truncated or rewritten in place by another "
                             "program?); restart once it is complete again\n";
    const size_t n = std::min(text.size(), sizeof(s.message) - 1);
    std::memcpy(s.message, text.data(), n);
    s.message[n] = '\0';
    s.begin.store(reinterpret_cast<uintptr_t>(begin), std::memory_order_release);
    return;
  }
  // More mappings than slots: this one's SIGBUS would stay unexplained, nothing worse.
}

void unregister_mapping(const void* begin) {
  std::lock_guard<std::mutex> lock(g_mu);
  for (Slot& s : g_slots)
    if (s.begin.load(std::memory_order_relaxed) == reinterpret_cast<uintptr_t>(begin)) s.begin.store(0);
}

}  // namespace zt
