#include "core/data/token_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include "core/error.h"

namespace zt {

TokenFile TokenFile::open(const std::string& path, int64_t vocab_size) {
  if (!std::filesystem::is_regular_file(path)) fail("token file not found: {}", path);
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail("{}: cannot stat: {}", path, std::strerror(err));
  }
  const auto file_bytes = static_cast<int64_t>(st.st_size);
  if (file_bytes < kTokenFileHeaderBytes) {
    ::close(fd);
    fail("{}: {} bytes is too short for a token file header ({} bytes)", path, file_bytes, kTokenFileHeaderBytes);
  }
  void* map = mmap(nullptr, file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  ::close(fd);
  if (map == MAP_FAILED) fail("{}: mmap failed: {}", path, std::strerror(map_err));

  TokenFile f;
  f.path_ = path;
  f.map_ = map;
  f.map_bytes_ = static_cast<size_t>(file_bytes);
  const auto* header = static_cast<const int32_t*>(map);
  if (header[0] != kTokenFileMagic)
    fail("{}: bad magic {} (expected {}; not a zerotrain/llm.c token file)", path, header[0], kTokenFileMagic);
  if (header[1] != 1 && header[1] != 2)
    fail("{}: unsupported version {} (1 = uint16 tokens, 2 = uint32 tokens)", path, header[1]);
  f.bits_ = header[1] == 1 ? 16 : 32;
  f.count_ = static_cast<uint32_t>(header[2]);
  const int64_t expected = kTokenFileHeaderBytes + f.count_ * (f.bits_ / 8);
  if (expected != file_bytes)
    fail("{}: file is {} bytes but the header claims {} tokens ({} bytes)", path, file_bytes, f.count_, expected);
  f.tokens_ = static_cast<const char*>(map) + kTokenFileHeaderBytes;
  if (vocab_size > 0) {
    const int64_t at = f.first_at_least(vocab_size);
    if (at < f.count_) fail("{}: token id {} at position {} >= vocab_size {}", path, f[at], at, vocab_size);
  }
  return f;
}

TokenFile::TokenFile(TokenFile&& o) noexcept { *this = std::move(o); }

TokenFile& TokenFile::operator=(TokenFile&& o) noexcept {
  std::swap(path_, o.path_);
  std::swap(map_, o.map_);
  std::swap(map_bytes_, o.map_bytes_);
  std::swap(tokens_, o.tokens_);
  std::swap(count_, o.count_);
  std::swap(bits_, o.bits_);
  return *this;
}

TokenFile::~TokenFile() {
  if (map_) munmap(map_, map_bytes_);
}

uint32_t TokenFile::max_token() const {
  uint32_t mx = 0;
  if (bits_ == 16) {
    const auto* t = static_cast<const uint16_t*>(tokens_);
#pragma omp parallel for reduction(max : mx)
    for (int64_t i = 0; i < count_; ++i) mx = std::max<uint32_t>(mx, t[i]);
  } else {
    const auto* t = static_cast<const uint32_t*>(tokens_);
#pragma omp parallel for reduction(max : mx)
    for (int64_t i = 0; i < count_; ++i) mx = std::max(mx, t[i]);
  }
  return mx;
}

int64_t TokenFile::first_at_least(int64_t limit) const {
  int64_t first = count_;
  if (limit > static_cast<int64_t>(UINT32_MAX)) return first;
  const auto lim = static_cast<uint32_t>(limit);
  if (bits_ == 16) {
    const auto* t = static_cast<const uint16_t*>(tokens_);
#pragma omp parallel for reduction(min : first)
    for (int64_t i = 0; i < count_; ++i)
      if (t[i] >= lim && i < first) first = i;
  } else {
    const auto* t = static_cast<const uint32_t*>(tokens_);
#pragma omp parallel for reduction(min : first)
    for (int64_t i = 0; i < count_; ++i)
      if (t[i] >= lim && i < first) first = i;
  }
  return first;
}

void write_token_file(const std::string& path, std::span<const uint32_t> tokens) {
  if (tokens.size() > UINT32_MAX) fail("{}: {} tokens exceed the format's 32-bit count", path, tokens.size());
  const uint32_t max_id = tokens.empty() ? 0 : *std::max_element(tokens.begin(), tokens.end());
  const int version = max_id < 65536 ? 1 : 2;
  std::vector<int32_t> header(256, 0);
  header[0] = kTokenFileMagic;
  header[1] = version;
  header[2] = static_cast<int32_t>(tokens.size());
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail("cannot write {}: {}", tmp, std::strerror(errno));
  errno = 0;
  bool ok = std::fwrite(header.data(), 4, header.size(), f) == header.size();
  if (version == 1) {
    std::vector<uint16_t> narrow(tokens.begin(), tokens.end());
    // fwrite's buffer must not be null, even for zero items: an empty vector's data() is.
    ok = ok && (narrow.empty() || std::fwrite(narrow.data(), 2, narrow.size(), f) == narrow.size());
  } else {
    ok = ok && (tokens.empty() || std::fwrite(tokens.data(), 4, tokens.size(), f) == tokens.size());
  }
  ok = (std::fflush(f) == 0) && ok && fsync(fileno(f)) == 0;
  int err = errno;
  ok = (std::fclose(f) == 0) && ok;
  if (ok && std::rename(tmp.c_str(), path.c_str()) != 0) ok = false;
  if (!ok) {
    if (err == 0) err = errno;
    std::remove(tmp.c_str());
    fail("cannot write {}: {}", path, std::strerror(err));
  }
}

}  // namespace zt
