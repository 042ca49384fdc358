// Token files in the llm.c / nanoGPT layout: a header of 256 little-endian int32
// ([0] magic 20240520, [1] version: 1 = uint16 tokens, 2 = uint32 tokens, [2] token count),
// then the tokens. Read through a read-only memory map.
#pragma once
#include <cstdint>
#include <span>
#include <string>

namespace zt {

inline constexpr int32_t kTokenFileMagic = 20240520;
inline constexpr int64_t kTokenFileHeaderBytes = 256 * 4;

class TokenFile {
 public:
  // Validates the header and size; with vocab_size > 0 also that every id is < vocab_size.
  static TokenFile open(const std::string& path, int64_t vocab_size = 0);
  TokenFile(TokenFile&& other) noexcept;
  TokenFile& operator=(TokenFile&& other) noexcept;
  TokenFile(const TokenFile&) = delete;
  TokenFile& operator=(const TokenFile&) = delete;
  ~TokenFile();

  const std::string& path() const { return path_; }
  int64_t size() const { return count_; }
  int bits() const { return bits_; }
  uint32_t operator[](int64_t i) const {
    return bits_ == 16 ? reinterpret_cast<const uint16_t*>(tokens_)[i]
                       : reinterpret_cast<const uint32_t*>(tokens_)[i];
  }
  uint32_t max_token() const;
  // Position of the first id >= limit, or size() when there is none (one parallel scan).
  int64_t first_at_least(int64_t limit) const;

 private:
  TokenFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  const void* tokens_ = nullptr;
  int64_t count_ = 0;
  int bits_ = 16;
};

// Writes uint16 tokens when every id fits, else uint32; through a temp file and a rename, so
// a failed write leaves nothing behind.
void write_token_file(const std::string& path, std::span<const uint32_t> tokens);

}  // namespace zt
