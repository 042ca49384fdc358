#include "launch/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "parallel/checkpoint_format.h"

namespace zt {

namespace fs = std::filesystem;

RunDirLock::RunDirLock(const fs::path& run_dir) {
  const fs::path path = run_dir / ".lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot create {}: {}", path.string(), std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    char holder[32] = {};
    const ssize_t n = ::pread(fd_, holder, sizeof(holder) - 1, 0);
    ::close(fd_);
    fd_ = -1;
    if (e == EWOULDBLOCK)
      fail("{} is in use by another zt train (pid {}); wait for it to finish or choose another run.name",
           run_dir.string(), n > 0 ? std::string(holder, strnlen(holder, n)) : "unknown");
    fail("cannot lock {}: {}", path.string(), std::strerror(e));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    fail("cannot write {}: {}", path.string(), std::strerror(errno));
}

RunDirLock::~RunDirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

void refuse_to_replace_a_run(const fs::path& run_dir, const fs::path& checkpoint_root, bool overwrite) {
  std::error_code ec;
  std::vector<std::string> found;
  if (fs::file_size(run_dir / "metrics.jsonl", ec) > 0 && !ec) found.push_back("metrics.jsonl");
  if (fs::exists(run_dir / "model.safetensors", ec)) found.push_back("model.safetensors");
  if (fs::exists(checkpoint_root / kLatestFile, ec) || !list_checkpoints(checkpoint_root).empty())
    found.push_back(checkpoint_root.string());
  if (found.empty() || overwrite) return;
  std::string what;
  for (const auto& f : found) what += (what.empty() ? "" : ", ") + f;
  fail("{} holds another run ({}) and this run does not resume from it; starting over would replace it: choose "
       "another run.name, or set run.overwrite: true",
       run_dir.string(), what);
}

void check_writable(const fs::path& dir, const std::string& key) {
  fs::path p = fs::absolute(dir);
  std::error_code ec;
  while (!fs::exists(p, ec) && p.has_parent_path() && p != p.parent_path()) p = p.parent_path();
  if (!fs::is_directory(p, ec)) fail("{} {}: {} is not a directory", key, dir.string(), p.string());
  if (::access(p.c_str(), W_OK | X_OK) != 0)
    fail("{} {}: cannot write in {}: {}", key, dir.string(), p.string(), std::strerror(errno));
}

}  // namespace zt
