#include "core/fileio.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace zt {

namespace fs = std::filesystem;

void fsync_path(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open {} to sync it: {}", path.string(), std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) fail("fsync of {} failed: {}", path.string(), std::strerror(err));
}

void write_file_atomic(const fs::path& path, const std::string& content) {
  const fs::path tmp = path.string() + ".tmp";
  std::error_code ec;
  try {
    FileWriter w(tmp);
    w.write(content.data(), content.size());
    w.close();
  } catch (...) {
    fs::remove(tmp, ec);  // a full disk leaves the old file and no partial new one
    throw;
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    fail("cannot rename {} to {}: {}", tmp.string(), path.string(), ec.message());
  }
  fsync_path(path.parent_path().empty() ? fs::path(".") : path.parent_path());
}

int open_regular_file(const fs::path& path, int64_t* size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open {}: {}", path.string(), std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    fail("cannot stat {}: {}", path.string(), std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                                              : "a socket";
    fail("{} is {}, not a regular file", path.string(), kind);
  }
  if (size) *size = static_cast<int64_t>(st.st_size);
  return fd;
}

std::string read_text_file(const fs::path& path) {
  int64_t size = 0;
  const int fd = open_regular_file(path, &size);
  std::string text(static_cast<size_t>(size), '\0');
  try {
    read_exact(fd, text.data(), text.size(), 0, path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return text;
}

FileWriter::FileWriter(const fs::path& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot create {}: {}", path.string(), std::strerror(errno));
}

FileWriter::~FileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void FileWriter::write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t k = ::write(fd_, p, std::min<size_t>(n, size_t{1} << 30));
    if (k < 0) {
      if (errno == EINTR) continue;
      fail("writing {} failed: {}", path_.string(), std::strerror(errno));
    }
    p += k;
    n -= static_cast<size_t>(k);
    bytes_ += k;
  }
}

void FileWriter::close() {
  if (fd_ < 0) return;
  const int rc = ::fsync(fd_);
  const int err = errno;
  ::close(fd_);
  fd_ = -1;
  if (rc != 0) fail("fsync of {} failed: {}", path_.string(), std::strerror(err));
}

void read_exact(int fd, void* data, size_t n, int64_t offset, const fs::path& path) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t k = ::pread(fd, p, n, offset);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) fail("reading {} failed: {}", path.string(), std::strerror(errno));
    if (k == 0) fail("{} is truncated: expected more bytes at offset {}", path.string(), offset);
    p += k;
    n -= static_cast<size_t>(k);
    offset += k;
  }
}

}  // namespace zt
