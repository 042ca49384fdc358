#include "core/data/token_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

#include "core/data/mapped_files.h"
#include "core/error.h"
#include "core/fileio.h"
#include "core/log.h"

namespace zt {

TokenFile TokenFile::open(const std::string& path, int64_t vocab_size, TokenFormat format) {
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
  if (format == TokenFormat::automatic) {
    int32_t magic = 0;
    const bool has_magic = file_bytes >= 4 && pread(fd, &magic, 4, 0) == 4 && magic == kTokenFileMagic;
    if (!has_magic && file_bytes % 2 != 0) {
      ::close(fd);
      fail("{}: neither an llm.c token file (no magic {}) nor a nanoGPT uint16 file (odd size, {} bytes); "
           "set data.format to say which it is", path, kTokenFileMagic, file_bytes);
    }
    format = has_magic ? TokenFormat::llmc : TokenFormat::nanogpt;
    // Once per file: training opens a file twice (plan, then the datasets).
    static std::mutex logged_mutex;
    static std::set<std::string> logged;
    std::lock_guard<std::mutex> lock(logged_mutex);
    if (!has_magic && logged.insert(path).second)
      log::info("{}: no llm.c header (magic {}): reading it as nanoGPT's headerless uint16 tokens ({} tokens); "
                "data.format: nanogpt says so explicitly", path, kTokenFileMagic, file_bytes / 2);
  }
  if (format == TokenFormat::nanogpt) {
    if (file_bytes % 2 != 0 || file_bytes == 0) {
      ::close(fd);
      fail("{}: {} bytes is not a nanoGPT token file (uint16 tokens: a non-zero, even size)", path, file_bytes);
    }
  } else if (file_bytes < kTokenFileHeaderBytes) {
    ::close(fd);
    fail("{}: {} bytes is too short for a token file header ({} bytes)", path, file_bytes, kTokenFileHeaderBytes);
  }
  void* map = mmap(nullptr, file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  ::close(fd);
  if (map == MAP_FAILED) fail("{}: mmap failed: {}", path, std::strerror(map_err));

  register_mapping(map, static_cast<size_t>(file_bytes), path);
  TokenFile f;
  f.path_ = path;
  f.map_ = map;
  f.map_bytes_ = static_cast<size_t>(file_bytes);
  if (format == TokenFormat::nanogpt) {
    f.bits_ = 16;
    f.count_ = file_bytes / 2;
    f.tokens_ = map;
  } else {
    f.open_llmc(file_bytes);
  }
  if (vocab_size > 0) {
    const int64_t at = f.first_at_least(vocab_size);
    if (at < f.count_) fail("{}: token id {} at position {} >= vocab_size {}", path, f[at], at, vocab_size);
  }
  return f;
}

TokenFile TokenFile::from_tokens(std::string name, std::vector<uint32_t> tokens) {
  TokenFile f;
  f.path_ = std::move(name);
  f.owned_ = std::move(tokens);
  f.tokens_ = f.owned_.data();
  f.count_ = static_cast<int64_t>(f.owned_.size());
  f.bits_ = 32;
  return f;
}

void TokenFile::open_llmc(int64_t file_bytes) {
  const std::string& path = path_;
  const auto* header = static_cast<const int32_t*>(map_);
  if (header[0] != kTokenFileMagic)
    fail("{}: bad magic {} (expected {}; not a zerotrain/llm.c token file; a headerless nanoGPT .bin needs "
         "data.format: nanogpt or auto)", path, header[0], kTokenFileMagic);
  if (header[1] != 1 && header[1] != 2)
    fail("{}: unsupported version {} (1 = uint16 tokens, 2 = uint32 tokens)", path, header[1]);
  bits_ = header[1] == 1 ? 16 : 32;
  count_ = static_cast<uint32_t>(header[2]);
  const int64_t expected = kTokenFileHeaderBytes + count_ * (bits_ / 8);
  if (expected != file_bytes)
    fail("{}: file is {} bytes but the header claims {} tokens ({} bytes)", path, file_bytes, count_, expected);
  tokens_ = static_cast<const char*>(map_) + kTokenFileHeaderBytes;
}

TokenFile::TokenFile(TokenFile&& o) noexcept { *this = std::move(o); }

TokenFile& TokenFile::operator=(TokenFile&& o) noexcept {
  std::swap(path_, o.path_);
  std::swap(map_, o.map_);
  std::swap(map_bytes_, o.map_bytes_);
  std::swap(tokens_, o.tokens_);
  std::swap(count_, o.count_);
  std::swap(bits_, o.bits_);
  std::swap(owned_, o.owned_);  // the vectors' buffers, and so tokens_, stay where they are
  return *this;
}

TokenFile::~TokenFile() {
  if (!map_) return;
  unregister_mapping(map_);
  munmap(map_, map_bytes_);
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

TokenFileWriter::TokenFileWriter(std::string path, int bits) : path_(std::move(path)), tmp_(path_ + ".tmp"), bits_(bits) {
  ZT_CHECK(bits == 16 || bits == 32, "token bits {}", bits);
  fd_ = ::open(tmp_.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd_ < 0) fail("cannot write {}: {}", tmp_, std::strerror(errno));
  std::vector<int32_t> header(256, 0);
  header[0] = kTokenFileMagic;
  header[1] = bits == 16 ? 1 : 2;
  write_all(header.data(), kTokenFileHeaderBytes, 0);
}

TokenFileWriter::~TokenFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    std::remove(tmp_.c_str());
  }
}

void TokenFileWriter::write_all(const void* data, size_t bytes, int64_t offset) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = pwrite(fd_, p, bytes, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot write {}: {}", tmp_, std::strerror(n < 0 ? errno : EIO));
    p += n;
    bytes -= static_cast<size_t>(n);
    offset += n;
  }
}

void TokenFileWriter::append(std::span<const uint32_t> tokens) {
  if (count_ + static_cast<int64_t>(tokens.size()) > static_cast<int64_t>(UINT32_MAX))
    fail("{}: more than {} tokens exceed the format's 32-bit count", path_, UINT32_MAX);
  const int64_t offset = kTokenFileHeaderBytes + count_ * (bits_ / 8);
  if (bits_ == 16) {
    std::vector<uint16_t> narrow(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
      ZT_CHECK(tokens[i] < 65536, "token id {} in a uint16 token file", tokens[i]);
      narrow[i] = static_cast<uint16_t>(tokens[i]);
    }
    write_all(narrow.data(), narrow.size() * 2, offset);
  } else {
    write_all(tokens.data(), tokens.size() * 4, offset);
  }
  count_ += static_cast<int64_t>(tokens.size());
}

void TokenFileWriter::move_tail(int64_t n, TokenFileWriter& to) {
  ZT_CHECK(n >= 0 && n <= count_ && to.bits_ == bits_, "tail of {} from {} tokens", n, count_);
  const int64_t width = bits_ / 8, first = count_ - n;
  std::vector<uint32_t> ids;
  std::vector<char> buf;
  for (int64_t done = 0; done < n;) {
    const int64_t k = std::min<int64_t>(n - done, int64_t{1} << 22);
    buf.resize(static_cast<size_t>(k * width));
    const int64_t offset = kTokenFileHeaderBytes + (first + done) * width;
    if (pread(fd_, buf.data(), buf.size(), offset) != static_cast<ssize_t>(buf.size()))
      fail("cannot read back {}: {}", tmp_, std::strerror(errno));
    ids.resize(static_cast<size_t>(k));
    for (int64_t i = 0; i < k; ++i)
      ids[i] = bits_ == 16 ? reinterpret_cast<const uint16_t*>(buf.data())[i] : reinterpret_cast<const uint32_t*>(buf.data())[i];
    to.append(ids);
    done += k;
  }
  count_ = first;
  if (ftruncate(fd_, kTokenFileHeaderBytes + count_ * width) != 0) fail("cannot truncate {}: {}", tmp_, std::strerror(errno));
}

void TokenFileWriter::commit() {
  const auto count = static_cast<int32_t>(static_cast<uint32_t>(count_));
  write_all(&count, 4, 8);
  if (fsync(fd_) != 0) fail("cannot write {}: {}", tmp_, std::strerror(errno));
  ::close(fd_);
  fd_ = -1;
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp_.c_str());
    fail("cannot write {}: {}", path_, std::strerror(err));
  }
}

void write_token_file(const std::string& path, std::span<const uint32_t> tokens) {
  if (tokens.size() > UINT32_MAX) fail("{}: {} tokens exceed the format's 32-bit count", path, tokens.size());
  const uint32_t max_id = tokens.empty() ? 0 : *std::max_element(tokens.begin(), tokens.end());
  TokenFileWriter w(path, max_id < 65536 ? 16 : 32);
  w.append(tokens);
  w.commit();
}

}  // namespace zt
