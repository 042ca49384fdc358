// Token shards: which files a data key names, one dataset over several files (no sample spans
// two), the shard writer of `zt data prepare --shard-tokens`, and the CLI end to end.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <numeric>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/data/dataset.h"
#include "core/data/shard_writer.h"
#include "core/data/token_file.h"
#include "core/data/token_shards.h"
#include "tests/support/errors.h"
#include "tests/support/run_dir.h"

namespace fs = std::filesystem;

namespace zt {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::error_of;
using testing::TempDir;

// A token file of ids first, first + 1, ...
std::string counting_file(const fs::path& path, int64_t n, uint32_t first) {
  std::vector<uint32_t> ids(n);
  std::iota(ids.begin(), ids.end(), first);
  write_token_file(path.string(), ids);
  return path.string();
}

std::vector<uint32_t> tokens_of(const std::string& path) {
  const TokenFile f = TokenFile::open(path);
  std::vector<uint32_t> ids;
  for (int64_t i = 0; i < f.size(); ++i) ids.push_back(f[i]);
  return ids;
}

TEST(TokenShards, ADirectoryGivesItsSplitsShardsInSortedOrderAGlobItsMatchesAListItsOrder) {
  TempDir tmp;
  const fs::path d = tmp.path();
  for (const char* name : {"c.train.000002.bin", "c.train.000000.bin", "c.train.000001.bin", "c.val.bin"})
    counting_file(d / name, 10, 0);
  std::ofstream(d / "c.vocab.json") << "{}";
  const std::string s = d.string() + "/";
  EXPECT_THAT(resolve_token_files({d.string()}, "data.train", "train"),
              ElementsAre(s + "c.train.000000.bin", s + "c.train.000001.bin", s + "c.train.000002.bin"));
  EXPECT_THAT(resolve_token_files({d.string()}, "data.val", "val"), ElementsAre(s + "c.val.bin"));
  EXPECT_THAT(resolve_token_files({s + "c.train.00000[12].bin"}, "data.train", "train"),
              ElementsAre(s + "c.train.000001.bin", s + "c.train.000002.bin"));
  EXPECT_THAT(resolve_token_files({s + "c.val.bin", s + "c.train.000000.bin"}, "data.train", "train"),
              ElementsAre(s + "c.val.bin", s + "c.train.000000.bin"));
  EXPECT_TRUE(names_several_files({d.string()}));
  EXPECT_TRUE(names_several_files({s + "*.bin"}));
  EXPECT_FALSE(names_several_files({s + "c.val.bin"}));
}

TEST(TokenShards, ErrorsNameTheKeyAndTheFile) {
  TempDir tmp;
  const std::string s = tmp.str() + "/";
  counting_file(s + "a.train.bin", 10, 0);
  fs::create_directory(s + "empty");
  EXPECT_EQ(error_of([&] { resolve_token_files({s + "a.train.bin", s + "b.train.bin"}, "data.train", "train"); }),
            "data.train: file not found: " + s + "b.train.bin");
  EXPECT_EQ(error_of([&] { resolve_token_files({s + "x*.bin"}, "data.train", "train"); }),
            "data.train: no file matches the glob " + s + "x*.bin");
  EXPECT_THAT(error_of([&] { resolve_token_files({s + "empty"}, "data.val", "val"); }),
              HasSubstr("data.val: the directory " + s + "empty holds no val shards"));
  EXPECT_THAT(error_of([&] { resolve_token_files({s + "a.train.bin", s + "*.bin"}, "data.train", "train"); }),
              HasSubstr("data.train: " + s + "a.train.bin is named twice"));
  // Token widths may not mix: the second file is named.
  counting_file(s + "wide.bin", 10, 70000);
  EXPECT_THAT(error_of([&] { open_token_files({s + "a.train.bin", s + "wide.bin"}, 0, TokenFormat::llmc); }),
              HasSubstr(s + "wide.bin: holds uint32 tokens but " + s + "a.train.bin holds uint16"));
}

TEST(TokenShards, SamplesAreNumberedFileAfterFileAndNeverSpanTwoFiles) {
  TempDir tmp;
  // Files of 25, 9 and 40 tokens, T = 8: 3, 1 and 4 samples; file k holds ids 1000 k + i.
  std::vector<TokenRange> ranges;
  int k = 0;
  for (int64_t n : {25, 9, 40}) {
    const auto path = counting_file(tmp.path() / fmt::format("s{}.bin", k), n, 1000 * k);
    auto f = std::make_shared<const TokenFile>(TokenFile::open(path));
    ranges.push_back({f, 0, f->size()});
    ++k;
  }
  const int64_t T = 8;
  TokenDataset ds(ranges, T, "train");
  ASSERT_EQ(ds.num_samples(), 3 + 1 + 4);
  std::vector<int64_t> all(ds.num_samples());
  std::iota(all.begin(), all.end(), 0);
  Tensor in = Tensor::empty({ds.num_samples(), T}, DType::i32), tg = Tensor::empty({ds.num_samples(), T}, DType::i32);
  ds.fill_batch(all, in, tg);
  const int expected_file[] = {0, 0, 0, 1, 2, 2, 2, 2};
  const int expected_index[] = {0, 1, 2, 0, 0, 1, 2, 3};
  for (int64_t i = 0; i < ds.num_samples(); ++i)
    for (int64_t t = 0; t < T; ++t) {
      const int32_t want = 1000 * expected_file[i] + static_cast<int32_t>(expected_index[i] * T + t);
      EXPECT_EQ(in.data<int32_t>()[i * T + t], want) << "sample " << i;
      EXPECT_EQ(tg.data<int32_t>()[i * T + t], want + 1) << "sample " << i;
    }
  // Files too short for one sample each: an error naming the files and the rule.
  std::vector<TokenRange> short_ranges{{ranges[1].file, 0, 8}, {ranges[0].file, 0, 8}};
  EXPECT_THAT(error_of([&] { TokenDataset(short_ranges, T, "train"); }),
              HasSubstr("no file holds one sample of data.seq_len 8 + 1 (samples never span two files)"));
}

TEST(TokenShards, AValFractionSplitCutsTheFilesInOrder) {
  TempDir tmp;
  std::vector<std::shared_ptr<const TokenFile>> files;
  for (int k = 0; k < 3; ++k)
    files.push_back(std::make_shared<const TokenFile>(
        TokenFile::open(counting_file(tmp.path() / fmt::format("s{}.bin", k), 10, 100 * k))));
  const SplitRanges s = split_token_files(files, 14);
  ASSERT_EQ(s.before.size(), 2u);
  EXPECT_EQ(s.before[1].file, files[1]);
  EXPECT_EQ(s.before[1].end, 4);
  ASSERT_EQ(s.after.size(), 2u);
  EXPECT_EQ(s.after[0].begin, 4);
  EXPECT_EQ(s.after[1].file, files[2]);
  EXPECT_EQ(split_token_files(files, 30).after.size(), 0u);
}

TEST(ShardWriter, RollsOverEveryNTokensAndMovesATailThatSpansShardsInOrder) {
  TempDir tmp;
  const std::string stem = tmp.str() + "/c";
  std::vector<uint32_t> ids(23);
  std::iota(ids.begin(), ids.end(), 0u);
  std::vector<std::string> paths;
  {
    ShardWriter w(stem, "train", 16, 5);
    w.append(std::span(ids).first(3));
    w.append(std::span(ids).subspan(3));
    EXPECT_EQ(w.count(), 23);
    TokenFileWriter val(stem + ".val.bin", 16);
    w.move_tail(9, val);  // all of shards 3 and 4 (5 + 3 tokens) and 1 token of shard 2
    val.commit();
    paths = w.commit();
  }
  EXPECT_THAT(paths, ElementsAre(shard_path(stem, "train", 0), shard_path(stem, "train", 1), shard_path(stem, "train", 2)));
  EXPECT_THAT(tokens_of(paths[2]), ElementsAre(10, 11, 12, 13));
  std::vector<uint32_t> val = tokens_of(stem + ".val.bin"), want(ids.begin() + 14, ids.end());
  EXPECT_EQ(val, want);
  // Shards of an earlier, longer preparation go; others stay.
  counting_file(shard_path(stem, "train", 7), 3, 0);
  counting_file(tmp.path() / "other.train.000007.bin", 3, 0);
  remove_stale_shards(stem, "train", paths);
  EXPECT_FALSE(fs::exists(shard_path(stem, "train", 7)));
  EXPECT_TRUE(fs::exists(paths[2]));
  EXPECT_TRUE(fs::exists(tmp.path() / "other.train.000007.bin"));
}

TEST(ShardWriter, WithoutCommitNoShardIsLeft) {
  TempDir tmp;
  {
    ShardWriter w(tmp.str() + "/c", "train", 16, 4);
    std::vector<uint32_t> ids(10, 1);
    w.append(ids);
  }
  EXPECT_TRUE(fs::is_empty(tmp.path()));
}

TEST(TokenShards, TheVocabBesideAShardIsTheCorpusVocab) {
  EXPECT_EQ(vocab_beside("x/corpus.train.000003.bin"), "x/corpus.vocab.json");
  EXPECT_EQ(vocab_beside("x/corpus.val.bin"), "x/corpus.vocab.json");
  EXPECT_EQ(vocab_beside("x/fineweb_train_000001.bin"), "x/fineweb_train_000001.vocab.json");
}

}  // namespace
}  // namespace zt

namespace zt {
namespace {

// `zt data prepare --shard-tokens` writes the tokens of one-file preparation cut into shards;
// training and `zt eval` read a directory, a glob or a YAML list of them.
TEST(TokenShardsCli, PrepareShardsThenTrainAndEvalOnADirectoryAGlobAndAList) {
  TempDir tmp;
  const std::string text = tmp.str() + "/small.txt";
  std::ofstream(text) << testing::read_file(std::filesystem::path(ZT_SOURCE_DIR) / "data" / "tinyshakespeare.txt").substr(0, 5000);
  auto r = testing::run_zt("data prepare " + text + " -o " + tmp.str() + "/one --tokenizer byte");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testing::run_zt("data prepare " + text + " -o " + tmp.str() + "/sh --tokenizer byte --shard-tokens 1000");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("wrote 5 shards"));
  const std::vector<std::string> shards = resolve_token_files({tmp.str() + "/sh"}, "data.train", "train");
  ASSERT_EQ(shards.size(), 5u);  // 4500 train tokens
  std::vector<uint32_t> joined;
  for (const auto& s : shards) {
    const auto ids = tokens_of(s);
    EXPECT_LE(ids.size(), 1000u) << s;
    joined.insert(joined.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(joined, tokens_of(tmp.str() + "/one/small.train.bin"));
  EXPECT_EQ(tokens_of(tmp.str() + "/sh/small.val.bin"), tokens_of(tmp.str() + "/one/small.val.bin"));
  // Preparing again with larger shards leaves no shard of the first preparation behind.
  r = testing::run_zt("data prepare " + text + " -o " + tmp.str() + "/sh --tokenizer byte --shard-tokens 2000");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(resolve_token_files({tmp.str() + "/sh"}, "data.train", "train").size(), 3u);

  const std::string common = " --set train.steps=2 --set data.tokenizer=none --set run.out_dir=" + tmp.str() + "/runs";
  // The preflight and the plan name the shards and count their samples.
  const std::string sharded = " --set data.train=" + tmp.str() + "/sh --set data.val=" + tmp.str() + "/sh";
  r = testing::run_zt("train configs/test-tiny-gpt2.yaml --dry-run" + sharded + common);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string summary = "data: train 3 shards, " + tmp.str() + "/sh/small.train.000000.bin ... " + tmp.str() +
                              "/sh/small.train.000002.bin (279 samples of 16 tokens); val " + tmp.str() +
                              "/sh/small.val.bin (31 samples)";
  EXPECT_THAT(r.output, HasSubstr(summary));
  r = testing::run_zt("plan configs/test-tiny-gpt2.yaml --world 2" + sharded + " --set data.tokenizer=none");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(summary));
  r = testing::run_zt("train configs/test-tiny-gpt2.yaml --set run.name=dir --set data.train=" + tmp.str() +
                      "/sh --set data.val=" + tmp.str() + "/sh" + common);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("from 3 shards"));
  // A YAML list in a config file; the resolved config keeps it as a list.
  const std::string cfg = tmp.str() + "/list.yaml";
  std::ofstream(cfg) << "run:\n  name: list\nmodel:\n  family: gpt2\n  n_layer: 1\n  n_head: 2\n  d_model: 16\n"
                        "data:\n  tokenizer: none\n  seq_len: 16\n  train:\n    - " + shards[0] + "\n    - '" + tmp.str() +
                        "/sh/small.train.00000[12].bin'\ntrain:\n  steps: 2\n";
  r = testing::run_zt("train " + cfg + " --set run.out_dir=" + tmp.str() + "/runs");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(testing::read_file(tmp.path() / "runs" / "list" / "config.yaml"),
              HasSubstr("train: [\"" + shards[0] + "\", \"" + tmp.str() + "/sh/small.train.00000[12].bin\"]"));
  r = testing::run_zt("eval " + tmp.str() + "/runs/dir --data '" + tmp.str() + "/sh/*.train.*.bin' --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto train_eval = nlohmann::json::parse(r.output);
  EXPECT_EQ(train_eval["samples"], 124 + 124 + 31);  // every sample of the 2000-, 2000- and 500-token shards
  // A run trained on text reads several --data files as token files only.
  r = testing::run_zt("train configs/test-tiny-gpt2.yaml --set run.name=text --set train.steps=1 --set data.tokenizer=byte "
                      "--set data.train=" + text + " --set run.out_dir=" + tmp.str() + "/runs");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testing::run_zt("eval " + tmp.str() + "/runs/text --data " + shards[0] + " --data " + text);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("zt eval: --data " + text + ": several files are read as token files"));
  r = testing::run_zt("eval " + tmp.str() + "/runs/dir --data " + tmp.str() + "/sh");  // the val shard
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("loss "));

  // Shards prepared with another tokenizer are refused, naming both vocab files.
  std::filesystem::create_directories(tmp.path() / "other");
  std::filesystem::copy_file(shards[0], tmp.path() / "other" / "x.train.bin");
  std::ofstream(tmp.path() / "other" / "x.vocab.json") << testing::read_file(tmp.path() / "sh" / "small.vocab.json") << " ";
  r = testing::run_zt("train configs/test-tiny-gpt2.yaml --dry-run --set run.name=mixed --set \"data.train=[" + tmp.str() +
                      "/sh, " + tmp.str() + "/other]\"" + common);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr(tmp.str() + "/other/x.train.bin: its tokenizer " + tmp.str() +
                                  "/other/x.vocab.json differs from " + tmp.str() + "/sh/small.vocab.json"));
  // A list of files is for token shards only.
  r = testing::run_zt("train configs/test-tiny-gpt2.yaml --dry-run --set \"data.train=[" + text + ", " + text + "]\"");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("data.train: a list of 2 files is read as token shards, which needs data.tokenizer: none"));
}

}  // namespace
}  // namespace zt
