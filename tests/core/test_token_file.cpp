// Token files: format boundaries, error messages that name the file, atomic writes.
// (The basic round trip and header errors are in test_data.cpp.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <utility>
#include <vector>

#include "core/data/token_file.h"
#include "core/error.h"
#include "tests/support/errors.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

using ::testing::HasSubstr;
using testing::error_of;
using testing::TempDir;

// A file of exactly `bytes` bytes whose header starts with `header` (rest zero).
void write_raw(const std::filesystem::path& p, const std::vector<int32_t>& header, size_t bytes) {
  std::vector<char> data(bytes, 0);
  std::memcpy(data.data(), header.data(), std::min(bytes, header.size() * 4));
  std::ofstream(p, std::ios::binary).write(data.data(), static_cast<std::streamsize>(bytes));
}

TEST(TokenFile, PicksUint16UpTo65535AndUint32From65536) {
  TempDir tmp;
  const std::string a = (tmp.path() / "a.bin").string(), b = (tmp.path() / "b.bin").string();
  write_token_file(a, std::vector<uint32_t>{65535, 0});
  write_token_file(b, std::vector<uint32_t>{65536, 0});
  EXPECT_EQ(TokenFile::open(a).bits(), 16);
  EXPECT_EQ(TokenFile::open(b).bits(), 32);
  EXPECT_EQ(std::filesystem::file_size(a), 1024u + 2 * 2);
  EXPECT_EQ(std::filesystem::file_size(b), 1024u + 2 * 4);
  EXPECT_EQ(TokenFile::open(b)[0], 65536u);
  // The header is the llm.c one: magic, version, count as little-endian int32.
  std::ifstream in(b, std::ios::binary);
  int32_t h[3];
  in.read(reinterpret_cast<char*>(h), sizeof h);
  EXPECT_EQ(h[0], 20240520);
  EXPECT_EQ(h[1], 2);
  EXPECT_EQ(h[2], 2);
}

TEST(TokenFile, EmptyFileRoundTrips) {
  TempDir tmp;
  const std::string p = (tmp.path() / "e.bin").string();
  write_token_file(p, std::vector<uint32_t>{});
  TokenFile f = TokenFile::open(p, 10);
  EXPECT_EQ(f.size(), 0);
  EXPECT_EQ(f.bits(), 16);
}

TEST(TokenFile, ShorterThanAHeaderIsRejected) {
  TempDir tmp;
  auto p = tmp.path() / "short.bin";
  write_raw(p, {kTokenFileMagic, 1, 0}, 100);
  EXPECT_THAT(error_of([&] { TokenFile::open(p.string()); }),
              HasSubstr("short.bin: 100 bytes is too short for a token file header (1024 bytes)"));
}

TEST(TokenFile, TruncatedUint32FileReportsBothSizes) {
  TempDir tmp;
  auto p = tmp.path() / "t.bin";
  write_raw(p, {kTokenFileMagic, 2, 10}, 1024 + 4 * 9);
  EXPECT_THAT(error_of([&] { TokenFile::open(p.string()); }),
              HasSubstr("t.bin: file is 1060 bytes but the header claims 10 tokens (1064 bytes)"));
  write_raw(p, {kTokenFileMagic, 1, 10}, 1024 + 2 * 11);  // too long is an error as well
  EXPECT_THAT(error_of([&] { TokenFile::open(p.string()); }), HasSubstr("claims 10 tokens (1044 bytes)"));
}

TEST(TokenFile, BadMagicMessageExplainsTheFormat) {
  TempDir tmp;
  auto p = tmp.path() / "x.bin";
  write_raw(p, {12345, 1, 0}, 1024);
  EXPECT_EQ(error_of([&] { TokenFile::open(p.string()); }),
            p.string() + ": bad magic 12345 (expected 20240520; not a zerotrain/llm.c token file; a headerless "
                         "nanoGPT .bin needs data.format: nanogpt or auto)");
  write_raw(p, {kTokenFileMagic, 0, 0}, 1024);
  EXPECT_THAT(error_of([&] { TokenFile::open(p.string()); }), HasSubstr("x.bin: unsupported version 0"));
}

TEST(TokenFile, VocabCheckNamesTheFirstOffendingPosition) {
  TempDir tmp;
  // Large enough that the scan is split across threads; the first bad id is not the largest.
  std::vector<uint32_t> ids(200000, 3);
  ids[123456] = 70;
  ids[150000] = 90;
  ids[199999] = 64;
  for (const char* name : {"u16.bin", "u32.bin"}) {
    const std::string p = (tmp.path() / name).string();
    if (std::string(name) == "u32.bin") ids[10] = 70000;  // forces uint32 and moves the first bad id
    write_token_file(p, ids);
    const size_t first = std::string(name) == "u32.bin" ? 10 : 123456;
    EXPECT_EQ(error_of([&] { TokenFile::open(p, 65); }),
              fmt::format("{}: token id {} at position {} >= vocab_size 65", p, ids[first], first));
    EXPECT_NO_THROW(TokenFile::open(p, 100000));
    EXPECT_EQ(TokenFile::open(p, 0).size(), 200000);  // 0 = no check
  }
}

TEST(TokenFile, MissingFileAndDirectory) {
  TempDir tmp;
  const std::string p = (tmp.path() / "nope.bin").string();
  EXPECT_EQ(error_of([&] { TokenFile::open(p); }), "token file not found: " + p);
  EXPECT_EQ(error_of([&] { TokenFile::open(tmp.str()); }), "token file not found: " + tmp.str());
}

TEST(TokenFile, MovedFileKeepsItsMapping) {
  TempDir tmp;
  const std::string p = (tmp.path() / "m.bin").string();
  write_token_file(p, std::vector<uint32_t>{9, 8, 7});
  TokenFile a = TokenFile::open(p);
  TokenFile b = std::move(a);
  EXPECT_EQ(b.size(), 3);
  EXPECT_EQ(b[2], 7u);
  {
    TokenFile c = TokenFile::open(p);
    c = std::move(b);  // moves swap, so each mapping is still unmapped exactly once
    EXPECT_EQ(c[0], 9u);
    b = std::move(c);
  }
  EXPECT_EQ(b[1], 8u);
}

TEST(TokenFile, FailedWriteLeavesNothing) {
  TempDir tmp;
  const auto p = tmp.path() / "no-such-dir" / "x.bin";
  EXPECT_THAT(error_of([&] { write_token_file(p.string(), std::vector<uint32_t>{1, 2}); }),
              HasSubstr(p.string() + ".tmp: No such file or directory"));
  EXPECT_FALSE(std::filesystem::exists(p));
  EXPECT_FALSE(std::filesystem::exists(p.string() + ".tmp"));
  // Rewriting an existing file replaces it and leaves no temp file.
  const std::string q = (tmp.path() / "y.bin").string();
  write_token_file(q, std::vector<uint32_t>{1, 2, 3});
  write_token_file(q, std::vector<uint32_t>{4});
  EXPECT_EQ(TokenFile::open(q).size(), 1);
  EXPECT_FALSE(std::filesystem::exists(q + ".tmp"));
}

// nanoGPT's train.bin: uint16 tokens, no header.
void write_nanogpt(const std::filesystem::path& p, const std::vector<uint16_t>& ids) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(ids.data()), static_cast<std::streamsize>(ids.size() * 2));
}

TEST(TokenFile, NanogptFilesReadExplicitlyOrDetectedByMissingMagicAndEvenSize) {
  TempDir tmp;
  const auto p = tmp.path() / "train.bin";
  std::vector<uint16_t> ids(700);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<uint16_t>((i * 7919) % 50257);
  write_nanogpt(p, ids);
  for (TokenFormat f : {TokenFormat::nanogpt, TokenFormat::automatic}) {
    TokenFile t = TokenFile::open(p.string(), 50257, f);
    ASSERT_EQ(t.size(), 700);
    EXPECT_EQ(t.bits(), 16);
    for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(t[static_cast<int64_t>(i)], ids[i]);
  }
  // Read as llm.c (the strict default) it is a bad magic, and the message names the way out.
  EXPECT_THAT(error_of([&] { TokenFile::open(p.string()); }), HasSubstr("data.format: nanogpt"));
  // An llm.c file is still read as llm.c by auto; nanogpt on it would read the header as tokens.
  const auto q = tmp.path() / "llmc.bin";
  write_token_file(q.string(), std::vector<uint32_t>{5, 6, 7});
  EXPECT_EQ(TokenFile::open(q.string(), 0, TokenFormat::automatic).size(), 3);
  // Odd sizes are neither; an empty nanoGPT file has no tokens.
  std::ofstream(tmp.path() / "odd.bin", std::ios::binary) << "abc";
  EXPECT_THAT(error_of([&] { TokenFile::open((tmp.path() / "odd.bin").string(), 0, TokenFormat::automatic); }),
              HasSubstr("odd.bin: neither an llm.c token file (no magic 20240520) nor a nanoGPT uint16 file (odd size, 3 bytes)"));
  std::ofstream(tmp.path() / "empty.bin", std::ios::binary) << "";
  EXPECT_THAT(error_of([&] { TokenFile::open((tmp.path() / "empty.bin").string(), 0, TokenFormat::nanogpt); }),
              HasSubstr("0 bytes is not a nanoGPT token file"));
  EXPECT_THAT(error_of([&] { TokenFile::open(p.string(), 1000, TokenFormat::nanogpt); }), HasSubstr(">= vocab_size 1000"));
}

TEST(TokenFile, TrainsOnANanogptBinWithALogLineOrTheExplicitKey) {
  TempDir tmp;
  const auto p = tmp.path() / "train.bin";
  std::vector<uint16_t> ids(4000);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<uint16_t>((i * 31) % 97);
  write_nanogpt(p, ids);
  const std::string common = "train configs/test-tiny-gpt2.yaml --set train.steps=2 --set data.tokenizer=none "
                             "--set model.vocab_size=128 --set data.train=" + p.string();
  auto r = testing::run_zt(common + " --set run.out_dir=" + tmp.str() + "/a");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("reading it as nanoGPT's headerless uint16 tokens (4000 tokens)"));
  r = testing::run_zt(common + " --set data.format=nanogpt --set run.out_dir=" + tmp.str() + "/b");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("reading it as nanoGPT")));
  r = testing::run_zt(common + " --set data.format=llmc --set run.out_dir=" + tmp.str() + "/c");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("bad magic"));
  r = testing::run_zt("train configs/test-tiny-gpt2.yaml --set data.format=nanogpt --set run.out_dir=" + tmp.str() + "/d");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("data.format: nanogpt describes token files, which need data.tokenizer: none"));
}

// A token file truncated while mapped (another program rewrote it in place): reading a
// vanished page is one error naming the file, not a bare SIGBUS.
TEST(TokenFileDeathTest, TruncatedWhileMappedIsAnErrorNamingTheFile) {
  TempDir tmp;
  const std::string path = (tmp.path() / "shrinks.bin").string();
  std::vector<uint32_t> ids(1 << 20, 7);
  write_token_file(path, ids);
  EXPECT_EXIT(
      {
        TokenFile f = TokenFile::open(path);
        std::filesystem::resize_file(path, 4096);
        uint64_t sum = 0;
        for (int64_t i = 0; i < f.size(); i += 1024) sum += f[i];
        std::printf("read %llu\n", static_cast<unsigned long long>(sum));
        std::exit(0);
      },
      ::testing::ExitedWithCode(1), "shrinks.bin shrank while it was being read");
}

}  // namespace
}  // namespace zt
