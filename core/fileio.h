// Durable file writes: data reaches the disk (fsync) before a rename makes it visible, so a
// crash leaves either the old file or the new one, never a torn one.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

namespace zt {

// Writes `content` to path.tmp, fsyncs it, renames it over `path` and fsyncs the directory.
void write_file_atomic(const std::filesystem::path& path, const std::string& content);
void fsync_path(const std::filesystem::path& path);  // a file or a directory
std::string read_text_file(const std::filesystem::path& path);  // a regular file only

// Opens a regular file for reading (following symlinks) and returns its descriptor and size;
// a directory, device or FIFO is an error naming it: reading /dev/zero or a pipe as a
// checkpoint shard would never end.
int open_regular_file(const std::filesystem::path& path, int64_t* size);

// An open file written sequentially with large writes; close() fsyncs it.
class FileWriter {
 public:
  explicit FileWriter(const std::filesystem::path& path);
  ~FileWriter();
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;
  void write(const void* data, size_t n);
  void close();  // fsync + close; errors name the file
  int64_t bytes() const { return bytes_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  int64_t bytes_ = 0;
};

// Reads n bytes at `offset` or fails naming the file (a short read means a truncated file).
void read_exact(int fd, void* data, size_t n, int64_t offset, const std::filesystem::path& path);

}  // namespace zt
