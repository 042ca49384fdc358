// The run directory's guards: one training process per directory (a lock), no run silently
// replaced by a fresh start, and writable output locations found before training starts.
#pragma once
#include <filesystem>
#include <string>

namespace zt {

// Holds an exclusive lock on RUN_DIR/.lock (flock) while alive; a second `zt train` on the
// same directory fails at once naming the process that holds it. The lock dies with the
// process, so a crashed run never leaves a stale lock behind.
class RunDirLock {
 public:
  explicit RunDirLock(const std::filesystem::path& run_dir);
  ~RunDirLock();
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;

 private:
  int fd_ = -1;
};

// A fresh start (nothing to resume) in a directory that holds a run's metrics, weights or
// checkpoints would truncate or replace them: an error listing them, unless `overwrite`.
void refuse_to_replace_a_run(const std::filesystem::path& run_dir, const std::filesystem::path& checkpoint_root,
                             bool overwrite);

// Fails naming `key` when `dir` (or the nearest ancestor that exists) cannot be written, so
// that an unwritable checkpoint.dir is found before training, not at the first save.
void check_writable(const std::filesystem::path& dir, const std::string& key);

}  // namespace zt
