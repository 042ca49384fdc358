// Token files, tokenizers, datasets and `zt data prepare`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "core/data/dataset.h"
#include "core/data/token_file.h"
#include "core/data/tokenizer.h"
#include "core/error.h"
#include "tests/support/errors.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

using testing::error_of;

void write_bytes(const std::filesystem::path& p, const std::vector<int32_t>& header, const std::vector<uint16_t>& tokens) {
  std::ofstream out(p, std::ios::binary);
  std::vector<int32_t> h(256, 0);
  std::copy(header.begin(), header.end(), h.begin());
  out.write(reinterpret_cast<const char*>(h.data()), 1024);
  out.write(reinterpret_cast<const char*>(tokens.data()), tokens.size() * 2);
}

TEST(TokenFile, RoundTripsUint16AndUint32) {
  TempDir tmp;
  std::vector<uint32_t> small = {0, 5, 65535, 7}, big = {0, 70000, 3, 1u << 31};
  write_token_file((tmp.path() / "a.bin").string(), small);
  write_token_file((tmp.path() / "b.bin").string(), big);
  TokenFile a = TokenFile::open((tmp.path() / "a.bin").string());
  TokenFile b = TokenFile::open((tmp.path() / "b.bin").string());
  EXPECT_EQ(a.bits(), 16);
  EXPECT_EQ(b.bits(), 32);
  ASSERT_EQ(a.size(), 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(a[i], small[i]);
    EXPECT_EQ(b[i], big[i]);
  }
  EXPECT_EQ(std::filesystem::file_size(tmp.path() / "a.bin"), 1024u + 8u);
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "a.bin.tmp"));
}

TEST(TokenFile, RejectsBadMagicVersionTruncationAndLargeIds) {
  TempDir tmp;
  auto p = tmp.path() / "x.bin";
  write_bytes(p, {12345, 1, 3}, {1, 2, 3});
  EXPECT_THAT(error_of([&] { TokenFile::open(p.string()); }), HasSubstr("x.bin: bad magic 12345"));
  write_bytes(p, {kTokenFileMagic, 7, 3}, {1, 2, 3});
  EXPECT_THAT(error_of([&] { TokenFile::open(p.string()); }), HasSubstr("unsupported version 7"));
  write_bytes(p, {kTokenFileMagic, 1, 5}, {1, 2, 3});
  EXPECT_THAT(error_of([&] { TokenFile::open(p.string()); }), HasSubstr("header claims 5 tokens"));
  write_bytes(p, {kTokenFileMagic, 1, 3}, {1, 70, 3});
  EXPECT_THAT(error_of([&] { TokenFile::open(p.string(), 65); }), HasSubstr("token id 70 at position 1 >= vocab_size 65"));
  EXPECT_NO_THROW(TokenFile::open(p.string(), 71));
  EXPECT_THAT(error_of([&] { TokenFile::open((tmp.path() / "none.bin").string()); }), HasSubstr("token file not found"));
}

TEST(Tokenizer, CharVocabularyOfShakespeareRoundTrips) {
  const std::string text = read_text_file(ZT_SOURCE_DIR "/data/tinyshakespeare.txt");
  CharTokenizer tok = CharTokenizer::from_text(text);
  EXPECT_EQ(tok.vocab_size(), 65);
  const std::string sample = text.substr(0, 500);
  auto ids = tok.encode(sample);
  EXPECT_EQ(tok.decode(ids), sample);
  EXPECT_THAT(error_of([&] { tok.encode("caf\xc3\xa9"); }), HasSubstr("position 3"));

  TempDir tmp;
  const std::string path = (tmp.path() / "v.json").string();
  tok.save(path);
  auto loaded = load_tokenizer(path);
  EXPECT_EQ(loaded->kind(), "char");
  EXPECT_EQ(loaded->encode(sample), ids);
}

TEST(Tokenizer, BytesRoundTripAnything) {
  ByteTokenizer tok;
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  EXPECT_EQ(tok.decode(tok.encode(all)), all);
  TempDir tmp;
  tok.save((tmp.path() / "v.json").string());
  EXPECT_EQ(load_tokenizer((tmp.path() / "v.json").string())->vocab_size(), 256);
  std::ofstream((tmp.path() / "bad.json").string()) << "{\"kind\": \"bpe\"}";
  EXPECT_THAT(error_of([&] { load_tokenizer((tmp.path() / "bad.json").string()); }), HasSubstr("a bpe record needs"));
}

TEST(Dataset, SamplesAreShiftedWindows) {
  TempDir tmp;
  std::vector<uint32_t> ids(50);
  for (uint32_t i = 0; i < 50; ++i) ids[i] = i;
  write_token_file((tmp.path() / "t.bin").string(), ids);
  auto file = std::make_shared<TokenFile>(TokenFile::open((tmp.path() / "t.bin").string()));
  TokenDataset ds(file, 10, 50, 8, "train");
  EXPECT_EQ(ds.num_samples(), 4);  // (40 - 1) / 8
  Tensor in = Tensor::empty({2, 8}, DType::i32), tg = Tensor::empty({2, 8}, DType::i32);
  std::vector<int64_t> which = {3, 1};
  ds.fill_batch(which, in, tg);
  for (int t = 0; t < 8; ++t) {
    EXPECT_EQ(in.data<int32_t>()[t], 10 + 24 + t);
    EXPECT_EQ(tg.data<int32_t>()[t], 10 + 24 + t + 1);
    EXPECT_EQ(in.data<int32_t>()[8 + t], 10 + 8 + t);
  }
  EXPECT_EQ(train_split_end(1000, 0.1), 900);
  EXPECT_THAT(error_of([&] { TokenDataset(file, 0, 8, 8, "val"); }), HasSubstr("val split has 8 tokens"));
}

TEST(DataPrepare, WritesTokenFilesAndVocabAndNothingOnError) {
  TempDir tmp;
  const std::string out = (tmp.path() / "prepared").string();
  for (int run = 0; run < 2; ++run) {  // idempotent
    auto r = testing::run_zt("data prepare data/tinyshakespeare.txt -o " + out + " --val-fraction 0.1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  TokenFile train = TokenFile::open(out + "/tinyshakespeare.train.bin", 65);
  TokenFile val = TokenFile::open(out + "/tinyshakespeare.val.bin", 65);
  EXPECT_EQ(train.size() + val.size(), static_cast<int64_t>(std::filesystem::file_size(ZT_SOURCE_DIR "/data/tinyshakespeare.txt")));
  EXPECT_EQ(load_tokenizer(out + "/tinyshakespeare.vocab.json")->vocab_size(), 65);

  const std::string out2 = (tmp.path() / "never").string();
  auto r = testing::run_zt("data prepare missing.txt -o " + out2);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("missing.txt"));
  EXPECT_FALSE(std::filesystem::exists(out2));
  r = testing::run_zt("data prepare data/tinyshakespeare.txt --tokenizer bpe -o " + out2);
  EXPECT_THAT(r.output, HasSubstr("--tokenizer must be char, byte or the path of a tokenizer file"));
  EXPECT_FALSE(std::filesystem::exists(out2));
}

}  // namespace
}  // namespace zt
