// Temporary directories and `zt` subprocess runs for end-to-end tests.
#pragma once
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <system_error>

namespace zt::testing {

// A fresh directory under the system temp dir, removed with everything in it on scope exit.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("zt-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// The source tree and the zt binary of this build, unless ZT_TEST_SOURCE_DIR and ZT_TEST_BINARY
// name others (scripts/device-check.sh runs the packed binaries in another checkout).
inline std::string source_dir() {
  const char* dir = std::getenv("ZT_TEST_SOURCE_DIR");
  return dir && *dir ? dir : ZT_SOURCE_DIR;
}
inline std::string zt_binary() {
  const char* bin = std::getenv("ZT_TEST_BINARY");
  return bin && *bin ? bin : ZT_BINARY;
}

// Runs a shell command line from the source dir, capturing its output.
inline CommandResult run_command(const std::string& command) {
  CommandResult r;
  std::string full = "cd '" + source_dir() + "' && " + command + " 2>&1";
  FILE* pipe = popen(full.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), pipe)) r.output.append(buf.data(), n);
  int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// A session-directory base of its own for each mpirun (OMPI_MCA_orte_tmpdir_base), under one
// directory per test process that is removed at exit. By default every mpirun creates
// /tmp/ompi.HOST.UID, and of two that start at once (ctest -j2) OpenMPI 4.1's mkdir failed
// in the one that lost ("File exists"), and orte_init with it.
inline std::string mpi_session_base() {
  struct Parent {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("zt-ompi-" + std::to_string(static_cast<long>(::getpid())));
    ~Parent() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static Parent parent;
  static int next = 0;
  const std::filesystem::path dir = parent.path / std::to_string(next++);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// "mpirun ... -np N " as root, oversubscribed, unbound, with a session directory of its own:
// prefix of a command run on N ranks.
inline std::string mpirun(int np) {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 "
         "OMPI_MCA_orte_tmpdir_base='" + mpi_session_base() + "' "
         "mpirun --oversubscribe --bind-to none -np " + std::to_string(np) + " ";
}

inline CommandResult run_zt(const std::string& args) {
  return run_command("OMP_NUM_THREADS=1 '" + zt_binary() + "' " + args);
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace zt::testing
