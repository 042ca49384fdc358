// Datasets over token ranges, train/val splits, and preparing a text corpus (library and CLI).
// (Basic windows and the Shakespeare `zt data prepare` run are in test_data.cpp.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>

#include "core/data/dataset.h"
#include "core/data/prepare.h"
#include "core/data/token_file.h"
#include "core/data/tokenizer.h"
#include "core/data/unicode.h"
#include "core/error.h"
#include "tests/support/errors.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

using ::testing::HasSubstr;
using testing::error_of;
using testing::TempDir;

std::shared_ptr<TokenFile> counting_file(const TempDir& tmp, int64_t n, uint32_t offset = 0) {
  std::vector<uint32_t> ids(n);
  std::iota(ids.begin(), ids.end(), offset);
  const std::string p = (tmp.path() / "c.bin").string();
  write_token_file(p, ids);
  return std::make_shared<TokenFile>(TokenFile::open(p));
}

TEST(Dataset, EverySampleIsItsWindowShiftedByOne) {
  TempDir tmp;
  // uint32 ids so the file uses the wide layout.
  auto file = counting_file(tmp, 1000, 70000);
  ASSERT_EQ(file->bits(), 32);
  const int64_t T = 7, begin = 100, end = 200;
  TokenDataset ds(file, begin, end, T, "train");
  ASSERT_EQ(ds.num_samples(), (end - begin - 1) / T);  // 14
  std::vector<int64_t> all(ds.num_samples());
  std::iota(all.begin(), all.end(), 0);
  Tensor in = Tensor::empty({ds.num_samples(), T}, DType::i32);
  Tensor tg = Tensor::empty({ds.num_samples(), T}, DType::i32);
  ds.fill_batch(all, in, tg);
  for (int64_t i = 0; i < ds.num_samples(); ++i)
    for (int64_t t = 0; t < T; ++t) {
      EXPECT_EQ(in.data<int32_t>()[i * T + t], 70000 + begin + i * T + t);
      EXPECT_EQ(tg.data<int32_t>()[i * T + t], 70000 + begin + i * T + t + 1);
    }
  // The last target stays inside [begin, end).
  EXPECT_LT(tg.data<int32_t>()[ds.num_samples() * T - 1], 70000 + end);
}

TEST(Dataset, ExactlyOneSampleNeedsTPlusOneTokens) {
  TempDir tmp;
  auto file = counting_file(tmp, 9);
  EXPECT_EQ(TokenDataset(file, 0, 9, 8, "train").num_samples(), 1);
  EXPECT_EQ(TokenDataset(file, 1, 9, 4, "train").num_samples(), 1);  // (8 - 1) / 4
}

TEST(Dataset, SplitSizesFollowTheValFraction) {
  EXPECT_EQ(train_split_end(1000, 0.1), 900);
  EXPECT_EQ(train_split_end(1009, 0.1), 909);  // val = floor(100.9) = 100
  EXPECT_EQ(train_split_end(1000, 0.0), 1000);
  EXPECT_EQ(train_split_end(7, 0.5), 4);  // val = floor(3.5) = 3
  // train is [0, split), val the rest, each a dataset over the same file.
  TempDir tmp;
  auto file = counting_file(tmp, 1000);
  const int64_t split = train_split_end(file->size(), 0.1);
  TokenDataset train(file, 0, split, 16, "train"), val(file, split, file->size(), 16, "val");
  EXPECT_EQ(train.num_samples(), 899 / 16);
  EXPECT_EQ(val.num_samples(), 99 / 16);
  Tensor in = Tensor::empty({1, 16}, DType::i32), tg = Tensor::empty({1, 16}, DType::i32);
  std::vector<int64_t> first = {0};
  val.fill_batch(first, in, tg);
  EXPECT_EQ(in.data<int32_t>()[0], 900);
}

TEST(Dataset, TooSmallSplitNamesFileSizesAndSeqLen) {
  TempDir tmp;
  auto file = counting_file(tmp, 100);
  EXPECT_EQ(error_of([&] { TokenDataset(file, 95, 100, 8, "val"); }),
            file->path() + ": the val split has 5 tokens, fewer than one sample of data.seq_len 8 + 1");
  EXPECT_THAT(error_of([&] { TokenDataset(file, 0, 8, 8, "train"); }), HasSubstr("train split has 8 tokens"));
}

TEST(DataPrepare, LibraryWritesSplitsThatConcatenateToTheText) {
  TempDir tmp;
  const std::string text = "to be, or not to be: that is the question.\n";
  const std::string in = (tmp.path() / "q.txt").string();
  std::ofstream(in) << text;
  CharTokenizer tok = CharTokenizer::from_text(text);
  PreparedText p = prepare_text(in, tok, (tmp.path() / "out").string(), 0.25);
  EXPECT_EQ(p.train_path, (tmp.path() / "out" / "q.train.bin").string());
  EXPECT_EQ(p.val_path, (tmp.path() / "out" / "q.val.bin").string());
  EXPECT_EQ(p.vocab_path, (tmp.path() / "out" / "q.vocab.json").string());
  const auto n = static_cast<int64_t>(text.size());
  EXPECT_EQ(p.val_tokens, static_cast<int64_t>(n * 0.25));
  EXPECT_EQ(p.train_tokens + p.val_tokens, n);
  EXPECT_EQ(p.vocab_size, tok.vocab_size());
  TokenFile train = TokenFile::open(p.train_path, p.vocab_size), val = TokenFile::open(p.val_path, p.vocab_size);
  auto loaded = load_tokenizer(p.vocab_path);
  std::vector<uint32_t> ids;
  for (int64_t i = 0; i < train.size(); ++i) ids.push_back(train[i]);
  for (int64_t i = 0; i < val.size(); ++i) ids.push_back(val[i]);
  EXPECT_EQ(loaded->decode(ids), text);
}

TEST(DataPrepare, ZeroValFractionWritesNoValFile) {
  TempDir tmp;
  const std::string in = (tmp.path() / "b.txt").string();
  std::ofstream(in) << "bytes \x01\xff";
  prepare_text(in, ByteTokenizer(), tmp.str(), 0.5);
  ASSERT_TRUE(std::filesystem::exists(tmp.path() / "b.val.bin"));
  PreparedText p = prepare_text(in, ByteTokenizer(), tmp.str(), 0.0);  // removes the stale val split
  EXPECT_TRUE(p.val_path.empty());
  EXPECT_EQ(p.train_tokens, 8);
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "b.val.bin"));
  EXPECT_EQ(TokenFile::open(p.train_path)[7], 255u);
  for (double bad : {-0.1, 1.0, std::nan("")})
    EXPECT_THAT(error_of([&] { prepare_text(in, ByteTokenizer(), tmp.str(), bad); }),
                HasSubstr("val fraction must be in [0, 1)"));
}

TEST(DataPrepare, ByKindBuildsTheCharVocabularyFromTheText) {
  TempDir tmp;
  const std::string in = (tmp.path() / "k.txt").string();
  std::ofstream(in) << "abracadabra";
  PreparedText p = prepare_text(in, std::string("char"), tmp.str(), 0.0);
  EXPECT_EQ(p.vocab_size, 5);  // a b c d r
  EXPECT_EQ(load_tokenizer(p.vocab_path)->encode("abracadabra").size(), 11u);
  EXPECT_EQ(TokenFile::open(p.train_path, 5)[4], 2u);  // 'c'
  EXPECT_EQ(error_of([&] { prepare_text(in, std::string("bpe"), (tmp.path() / "o").string(), 0.0); }),
            "unknown tokenizer 'bpe' (expected char, byte or the path of a tokenizer file)");
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "o"));
}

TEST(DataPrepare, CliDefaultsToTheInputDirectoryAndIsIdempotent) {
  TempDir tmp;
  const std::string in = (tmp.path() / "corpus.txt").string();
  {
    std::ofstream out(in);
    for (int i = 0; i < 50; ++i) out << "line " << i << " of the corpus\n";
  }
  std::string first[3];
  for (int run = 0; run < 2; ++run) {
    auto r = testing::run_zt("data prepare " + in + " --tokenizer byte --val-fraction 0.2");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_THAT(r.output, HasSubstr(tmp.str() + "/corpus.train.bin"));
    EXPECT_THAT(r.output, HasSubstr(tmp.str() + "/corpus.val.bin"));
    EXPECT_THAT(r.output, HasSubstr("vocab 256"));
    const char* names[3] = {"corpus.train.bin", "corpus.val.bin", "corpus.vocab.json"};
    for (int f = 0; f < 3; ++f) {
      const std::string bytes = testing::read_file(tmp.path() / names[f]);
      ASSERT_FALSE(bytes.empty()) << names[f];
      if (run == 0) first[f] = bytes;
      else EXPECT_EQ(bytes, first[f]) << names[f] << " changed on rerun";
    }
  }
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 4);  // the input and the three outputs, no temp files
}

TEST(DataPrepare, CliTakesSeveralFilesAndGlobsAndCharsAreCodePoints) {
  TempDir tmp;
  std::ofstream(tmp.path() / "a.txt") << "Καλημέρα κόσμε\n";
  std::ofstream(tmp.path() / "b.txt") << "ça va, 世界 😀\n";
  std::ofstream(tmp.path() / "c.md") << "not matched";
  const std::string out = tmp.str() + "/out";
  auto r = testing::run_zt("data prepare '" + tmp.str() + "/*.txt' -o " + out + " --val-fraction 0");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto tok = load_tokenizer(out + "/corpus.vocab.json");
  TokenFile t = TokenFile::open(out + "/corpus.train.bin");
  std::vector<uint32_t> ids;
  for (int64_t i = 0; i < t.size(); ++i) ids.push_back(t[i]);
  EXPECT_EQ(tok->decode(ids), "Καλημέρα κόσμε\nça va, 世界 😀\n");
  EXPECT_EQ(t.size(), 15 + 12);  // code points, not bytes

  // Greek text trains with the char tokenizer, and generation prints Greek.
  std::string greek;
  for (int i = 0; i < 40; ++i) greek += "Καλημέρα κόσμε, τι κάνεις;\n";
  std::ofstream(tmp.path() / "greek.txt") << greek;
  r = testing::run_zt("train configs/test-tiny-gpt2.yaml --set train.steps=2 --set run.out_dir=" + tmp.str() +
                      "/runs --set data.train=" + tmp.str() + "/greek.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testing::run_zt("generate " + tmp.str() + "/runs/test-tiny-gpt2 --prompt 'Καλη' --tokens 10");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("Καλη"));
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("\xEF\xBF\xBD")));  // no U+FFFD: whole characters only
}

TEST(DataPrepare, VocabulariesOver65536IdsWriteUint32Tokens) {
  TempDir tmp;
  std::string text;  // 74884 distinct code points: CJK, Hangul, CJK extension B
  for (auto [first, last] : {std::pair<uint32_t, uint32_t>{0x4E00, 0x9FFF}, {0xAC00, 0xD7A3}, {0x20000, 0x2A6DF}})
    for (uint32_t cp = first; cp <= last; ++cp) unicode::append_utf8(text, cp);
  const std::string in = (tmp.path() / "wide.txt").string();
  std::ofstream(in, std::ios::binary) << text;
  PreparedText p = prepare_text(in, std::string("char"), tmp.str(), 0.1);
  EXPECT_EQ(p.vocab_size, 74884);
  TokenFile train = TokenFile::open(p.train_path, p.vocab_size), val = TokenFile::open(p.val_path, p.vocab_size);
  EXPECT_EQ(train.bits(), 32);
  EXPECT_EQ(val.bits(), 32);
  EXPECT_EQ(val[val.size() - 1], 74883u);  // ids are the sorted code points' ranks
}

TEST(DataPrepare, CliInputErrorsWriteNothing) {
  TempDir tmp;
  const std::string in = (tmp.path() / "x.txt").string();
  std::ofstream(in) << "abc";
  const std::string out = (tmp.path() / "out").string();
  const struct {
    std::string args, message;
  } cases[] = {
      {"data prepare " + in + " -o " + out + " --bogus 1", "unknown option '--bogus'"},
      {"data prepare " + in + " -o " + out + " --val-fraction 1.5", "val fraction must be in [0, 1)"},
      {"data prepare " + in + " -o " + out + " --tokenizer bpe", "--tokenizer must be char, byte or the path of a tokenizer file"},
      {"data prepare " + in + " -o " + out + " --tokenizer " + tmp.str() + "/no.json", "tokenizer file not found: " + tmp.str() + "/no.json"},
      {"data prepare '" + tmp.str() + "/*.md' -o " + out, tmp.str() + "/*.md matches no file"},
      {"data prepare " + tmp.str() + "/missing.txt -o " + out, "text file not found: " + tmp.str() + "/missing.txt"},
      {"data prepare -o " + out, "missing INPUT.txt"},
      {"data convert " + in, "expected 'zt data prepare"},
  };
  for (const auto& c : cases) {
    auto r = testing::run_zt(c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args;
    EXPECT_THAT(r.output, HasSubstr(c.message)) << c.args;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;  // one line
    EXPECT_FALSE(std::filesystem::exists(out)) << c.args;
  }
}

}  // namespace
}  // namespace zt
