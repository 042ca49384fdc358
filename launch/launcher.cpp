#include "launch/launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "core/error.h"
#include "launch/preemption.h"
#include "parallel/store.h"

namespace zt {

namespace {

volatile std::sig_atomic_t g_signal = 0;
volatile std::sig_atomic_t g_signal_count = 0;
void on_signal(int sig) {
  g_signal = sig;
  g_signal_count = g_signal_count + 1;
}

struct Worker {
  int rank = 0, local_rank = 0;
  pid_t pid = -1;
  int out_fd = -1, err_fd = -1;
  std::string out_buf, err_buf;
  bool exited = false;
  int code = 0;  // exit code, or 128 + signal
};

void emit(std::string& buf, const std::string& data, int rank, FILE* to, bool flush_all) {
  buf += data;
  size_t pos;
  while ((pos = buf.find('\n')) != std::string::npos) {
    std::fprintf(to, "[rank %d] %s\n", rank, buf.substr(0, pos).c_str());
    buf.erase(0, pos + 1);
  }
  if (flush_all && !buf.empty()) {
    std::fprintf(to, "[rank %d] %s\n", rank, buf.c_str());
    buf.clear();
  }
  std::fflush(to);
}

Worker spawn(const LaunchOptions& o, int local_rank, int attempt) {
  Worker w;
  w.local_rank = local_rank;
  w.rank = o.node_rank * o.nproc_per_node + local_rank;
  // Close-on-exec: a worker must not hold the launcher's ends of other workers' pipes (or any
  // other descriptor of ours); dup2 below clears the flag on the worker's own stdout/stderr.
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) fail("zt launch: cannot start rank {}: pipe failed: {}", w.rank, std::strerror(errno));
  if (pipe2(err, O_CLOEXEC) != 0) {
    const int e = errno;
    close(out[0]);
    close(out[1]);
    fail("zt launch: cannot start rank {}: pipe failed: {}", w.rank, std::strerror(e));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int e = errno;
    for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
    fail("zt launch: cannot start rank {}: fork failed: {}", w.rank, std::strerror(e));
  }
  if (pid == 0) {
    // A worker dies with its launcher (even a SIGKILLed one) instead of training on as an
    // orphan; the check after it covers a launcher that died before the prctl.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(128 + SIGKILL);
    setpgid(0, 0);  // own process group: signals reach the worker's children too
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    close(out[0]);
    close(out[1]);
    close(err[0]);
    close(err[1]);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGUSR1, SIG_DFL);
    setenv("RANK", std::to_string(w.rank).c_str(), 1);
    setenv("LOCAL_RANK", std::to_string(local_rank).c_str(), 1);
    setenv("WORLD_SIZE", std::to_string(o.nnodes * o.nproc_per_node).c_str(), 1);
    setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc_per_node).c_str(), 1);
    setenv("MASTER_ADDR", o.master_addr.c_str(), 1);
    setenv("MASTER_PORT", std::to_string(o.master_port).c_str(), 1);
    setenv("ZT_RESTART_COUNT", std::to_string(attempt).c_str(), 1);
    std::vector<char*> argv;
    for (const auto& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    std::fprintf(stderr, "zt launch: cannot run '%s': %s\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  setpgid(pid, pid);  // also from the parent, so a signal sent right away finds the group
  w.pid = pid;
  w.out_fd = out[0];
  w.err_fd = err[0];
  return w;
}

// Reads whatever the workers wrote, with at most `timeout_ms` of waiting.
void pump_output(std::vector<Worker>& workers, int timeout_ms, bool final) {
  std::vector<pollfd> fds;
  std::vector<std::pair<Worker*, bool>> who;  // worker, is stderr
  for (auto& w : workers) {
    if (w.out_fd >= 0) fds.push_back({w.out_fd, POLLIN, 0}), who.push_back({&w, false});
    if (w.err_fd >= 0) fds.push_back({w.err_fd, POLLIN, 0}), who.push_back({&w, true});
  }
  if (fds.empty()) {
    if (timeout_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
    return;
  }
  if (poll(fds.data(), fds.size(), timeout_ms) <= 0) return;
  char buf[8192];
  for (size_t i = 0; i < fds.size(); ++i) {
    if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    Worker& w = *who[i].first;
    const bool is_err = who[i].second;
    const ssize_t n = read(fds[i].fd, buf, sizeof(buf));
    if (n > 0) {
      emit(is_err ? w.err_buf : w.out_buf, std::string(buf, n), w.rank, is_err ? stderr : stdout, false);
    } else {
      emit(is_err ? w.err_buf : w.out_buf, "", w.rank, is_err ? stderr : stdout, true);
      close(fds[i].fd);
      (is_err ? w.err_fd : w.out_fd) = -1;
    }
  }
  (void)final;
}

void reap(std::vector<Worker>& workers) {
  for (auto& w : workers) {
    if (w.exited) continue;
    int status = 0;
    if (waitpid(w.pid, &status, WNOHANG) == w.pid) {
      w.exited = true;
      w.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }
}

// Signals each worker's process group, which includes anything the worker started.
void signal_all(std::vector<Worker>& workers, int sig) {
  for (auto& w : workers) kill(-w.pid, sig);
}

// Waits until every worker has exited, pumping their output, for at most `timeout_s`;
// signals the launcher receives meanwhile are forwarded. Then SIGKILLs what is left.
void wait_group(std::vector<Worker>& workers, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  int forwarded = g_signal_count;
  for (;;) {
    pump_output(workers, 50, false);
    reap(workers);
    bool all = true;
    for (auto& w : workers) all &= w.exited;
    if (all) break;
    if (g_signal_count != forwarded) {  // a second signal: the workers exit at once
      forwarded = g_signal_count;
      signal_all(workers, g_signal);
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "zt launch: workers still running after %.0f s; killing them\n", timeout_s);
      signal_all(workers, SIGKILL);
      for (auto& w : workers)
        if (!w.exited) {
          int status = 0;
          waitpid(w.pid, &status, 0);
          w.exited = true;
          w.code = 128 + SIGKILL;
        }
      break;
    }
  }
  while (true) {
    bool open = false;
    for (auto& w : workers) open |= w.out_fd >= 0 || w.err_fd >= 0;
    if (!open) break;
    pump_output(workers, 50, true);
  }
}

}  // namespace

int run_launcher(const LaunchOptions& o) {
  if (o.command.empty()) fail("zt launch: no command given (zt launch [options] -- CMD ...)");
  if (o.nproc_per_node < 1) fail("zt launch: --nproc-per-node must be >= 1");
  if (o.master_port < 1 || o.master_port > 65535) fail("zt launch: --master-port {} is not a TCP port (1-65535)", o.master_port);
  if (o.nnodes < 1 || o.node_rank < 0 || o.node_rank >= o.nnodes)
    fail("zt launch: --node-rank {} is outside --nnodes {}", o.node_rank, o.nnodes);
  std::unique_ptr<StoreServer> store;
  if (o.node_rank == 0) store = std::make_unique<StoreServer>("0.0.0.0", o.master_port);

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);

  for (int attempt = 0;; ++attempt) {
    std::vector<Worker> workers;
    try {
      for (int i = 0; i < o.nproc_per_node; ++i) workers.push_back(spawn(o, i, attempt));
    } catch (...) {
      // Workers already started would wait for their peers forever: stop them first.
      signal_all(workers, SIGKILL);
      wait_group(workers, 15);
      throw;
    }
    int failed_code = 0, failed_rank = -1;
    bool all_done = false;
    while (!all_done && failed_rank < 0 && !g_signal) {
      pump_output(workers, 100, false);
      reap(workers);
      all_done = true;
      for (auto& w : workers) {
        all_done &= w.exited;
        if (!w.exited || w.code == 0) continue;
        // Of the ranks that failed since the last look, name one killed by a signal: its
        // peers usually fail only because it vanished.
        if (failed_rank < 0 || (w.code > 128 && failed_code <= 128)) failed_rank = w.rank, failed_code = w.code;
      }
    }
    if (g_signal) {
      // Preemption: the workers finish their step, save a checkpoint and exit.
      const int sig = g_signal;
      std::fprintf(stderr, "zt launch: received signal %d, forwarding it to the workers\n", sig);
      signal_all(workers, sig);
      wait_group(workers, o.stop_timeout_s);
      for (auto& w : workers)
        if (w.code != 0) return w.code;
      return 128 + sig;
    }
    if (failed_rank < 0) {
      wait_group(workers, 0);  // drains the remaining output
      return 0;
    }
    if (failed_code == kExitPreempted) {
      // A worker was signalled directly (by a scheduler, say): the whole group is saving.
      std::fprintf(stderr, "zt launch: rank %d was preempted; waiting for the group to finish its checkpoint\n",
                   failed_rank);
      wait_group(workers, o.stop_timeout_s);
      return kExitPreempted;
    }
    // A failed group cannot save (a checkpoint needs every rank): stop the others now; a
    // restart resumes from the last complete checkpoint.
    std::fprintf(stderr, "zt launch: rank %d exited with code %d; stopping the group\n", failed_rank, failed_code);
    signal_all(workers, SIGKILL);
    wait_group(workers, 15);
    if (attempt >= o.max_restarts) {
      if (o.max_restarts > 0) std::fprintf(stderr, "zt launch: no restarts left (--max-restarts %d)\n", o.max_restarts);
      return failed_code;
    }
    std::fprintf(stderr, "zt launch: restarting the group (restart %d of %d)\n", attempt + 1, o.max_restarts);
  }
}

}  // namespace zt
