// Token files: llm.c's layout, a header of 256 little-endian int32 ([0] magic 20240520,
// [1] version: 1 = uint16 tokens, 2 = uint32 tokens, [2] token count) then the tokens; and
// nanoGPT's train.bin, uint16 tokens with no header. Read through a read-only memory map.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/config.h"

namespace zt {

inline constexpr int32_t kTokenFileMagic = 20240520;
inline constexpr int64_t kTokenFileHeaderBytes = 256 * 4;

class TokenFile {
 public:
  // Validates the header and size; with vocab_size > 0 also that every id is < vocab_size.
  // TokenFormat::automatic reads a file without llm.c's magic and of even size as nanoGPT's
  // headerless uint16 tokens, and logs that it did.
  static TokenFile open(const std::string& path, int64_t vocab_size = 0, TokenFormat format = TokenFormat::llmc);
  // Tokens held in memory (a text encoded on the fly); `name` stands for the path in errors.
  static TokenFile from_tokens(std::string name, std::vector<uint32_t> tokens);
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
  void open_llmc(int64_t file_bytes);  // validates the header of the mapped file
  std::string path_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  const void* tokens_ = nullptr;
  int64_t count_ = 0;
  int bits_ = 16;
  std::vector<uint32_t> owned_;  // from_tokens: the tokens themselves
};

// Writes an llm.c token file in pieces (streamed encoding): tokens go to PATH.tmp, commit()
// writes the count into the header and renames it to PATH; without commit() the destructor
// removes the temp file, so a failure leaves nothing behind.
class TokenFileWriter {
 public:
  TokenFileWriter(std::string path, int bits);  // bits: 16 (ids < 65536) or 32
  TokenFileWriter(const TokenFileWriter&) = delete;
  TokenFileWriter& operator=(const TokenFileWriter&) = delete;
  ~TokenFileWriter();
  void append(std::span<const uint32_t> tokens);
  // Moves the last n tokens to the end of `to` (a held-out split cut after streaming).
  void move_tail(int64_t n, TokenFileWriter& to);
  void commit();
  int64_t count() const { return count_; }
  const std::string& path() const { return path_; }

 private:
  void write_all(const void* data, size_t bytes, int64_t offset);
  std::string path_, tmp_;
  int fd_ = -1;
  int bits_;
  int64_t count_ = 0;
};

// The id width a vocabulary needs: 16 bits up to 65536 ids, else 32.
inline int token_bits_for_vocab(int64_t vocab_size) { return vocab_size <= 65536 ? 16 : 32; }

// Writes uint16 tokens when every id fits, else uint32; through a temp file and a rename, so
// a failed write leaves nothing behind.
void write_token_file(const std::string& path, std::span<const uint32_t> tokens);

}  // namespace zt
