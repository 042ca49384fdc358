// tokenizer.json written for tiktoken, byte and char tokenizers (what `zt export -o DIR/`
// puts in a model directory): Hugging Face `tokenizers` loads each one and gives our ids on
// the reference corpus (tests/tools/hf_tokenizer_ids.py), and zerotrain reads each back to
// the same tokenizer.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/data/bpe.h"
#include "core/data/bpe_files.h"
#include "core/data/hf_tokenizer_json.h"
#include "core/data/tokenizer.h"
#include "tests/support/errors.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

TEST(HfTokenizerJson, TokenizersGivesOurIdsForTiktokenByteAndCharTokenizers) {
  const std::string python = ZT_PYTHON;
  ASSERT_TRUE(fs::exists(python)) << "Python not found at " << python << ": run scripts/install-deps.sh";
  TempDir tmp;
  auto r = testing::run_command("'" + python + "' tests/tools/bpe_reference.py '" + tmp.str() +
                                "' --train data/tinyshakespeare.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::string> texts = read_json(tmp.path() / "expected.json")["texts"].get<std::vector<std::string>>();
  std::string all;
  for (const auto& t : texts) all += t + "\n";
  texts.push_back(all + read_text_file(ZT_SOURCE_DIR "/data/tinyshakespeare.txt").substr(0, 50000));
  std::ofstream(tmp.path() / "texts.json") << nlohmann::json(texts).dump();

  // The test ranks with tiktoken's cl100k pattern, and the same ranks named for GPT-2's.
  fs::copy_file(tmp.path() / "test.tiktoken", tmp.path() / "test-gpt2.tiktoken");
  std::vector<std::pair<std::string, std::unique_ptr<Tokenizer>>> tokenizers;
  tokenizers.emplace_back("tiktoken-cl100k", load_tokenizer((tmp.path() / "test.tiktoken").string()));
  tokenizers.emplace_back("tiktoken-gpt2", load_tokenizer((tmp.path() / "test-gpt2.tiktoken").string()));
  tokenizers.emplace_back("byte", make_tokenizer("byte", ""));
  tokenizers.emplace_back("char", make_tokenizer("char", texts.back()));
  std::string args;
  for (const auto& [name, tok] : tokenizers) {
    const fs::path json = tmp.path() / (name + ".tokenizer.json");
    std::ofstream(json) << hf_tokenizer_json(*tok);
    args += " '" + json.string() + "'";
  }
  r = testing::run_command("'" + python + "' tests/tools/hf_tokenizer_ids.py '" + tmp.str() + "/texts.json' '" +
                           tmp.str() + "/hf_ids.json'" + args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json hf = read_json(tmp.path() / "hf_ids.json");
  for (const auto& [name, tok] : tokenizers) {
    SCOPED_TRACE(name);
    const std::string json = (tmp.path() / (name + ".tokenizer.json")).string();
    const nlohmann::json& theirs = hf.at(json);
    // zerotrain reads what it wrote back to the same tokenizer.
    std::unique_ptr<Tokenizer> reread = load_tokenizer(json);
    EXPECT_EQ(reread->kind(), name == "char" ? "char" : "bpe");
    for (size_t i = 0; i < texts.size(); ++i) {
      SCOPED_TRACE("text " + std::to_string(i) + ": " + texts[i].substr(0, 50));
      const std::vector<uint32_t> ids = tok->encode(texts[i]);
      EXPECT_EQ(theirs["ids"][i].get<std::vector<uint32_t>>(), ids);
      EXPECT_EQ(theirs["decoded"][i].get<std::string>(), texts[i]);
      EXPECT_EQ(reread->encode(texts[i]), ids);
    }
  }
}

TEST(HfTokenizerJson, EachRecoveredMergeJoinsTwoTokensIntoOneOfHigherRank) {
  TempDir tmp;
  // "ab" forms before "bc" is considered for "abc": BPE on a|b|c joins a+b (rank 3) first.
  std::ofstream(tmp.path() / "t.tiktoken") << "YQ== 0\nYg== 1\nYw== 2\nYWI= 3\nYmM= 4\nYWJj 5\n";
  auto tok = load_tiktoken((tmp.path() / "t.tiktoken").string(), PretokPattern::cl100k);
  const auto merges = merges_from_ranks(*tok);
  ASSERT_EQ(merges.size(), 3u);
  EXPECT_EQ(merges[2].merged, 5u);
  EXPECT_EQ(merges[2].left, 3u);   // "ab"
  EXPECT_EQ(merges[2].right, 2u);  // "c"
}

TEST(HfTokenizerJson, OnlyTheCharFormOfWordLevelIsRead) {
  TempDir tmp;
  nlohmann::json j = nlohmann::json::parse(hf_tokenizer_json(CharTokenizer(std::vector<uint32_t>{'a', 'b'})));
  auto write = [&](const nlohmann::json& doc) {
    const std::string p = (tmp.path() / "t.json").string();
    std::ofstream(p) << doc.dump();
    return p;
  };
  EXPECT_EQ(load_tokenizer(write(j))->encode("abba"), (std::vector<uint32_t>{0, 1, 1, 0}));
  nlohmann::json word = j;
  word["model"]["vocab"]["ab"] = 2;
  std::string p = write(word);
  EXPECT_THAT(testing::error_of([&] { load_tokenizer(p); }),
              ::testing::HasSubstr(p + ": model.vocab entry \"ab\" is not one character"));
  nlohmann::json ws = j;
  ws["pre_tokenizer"] = {{"type", "Whitespace"}};
  p = write(ws);
  EXPECT_THAT(testing::error_of([&] { load_tokenizer(p); }),
              ::testing::HasSubstr("a WordLevel model is read only behind a Split that isolates each character"));
}

}  // namespace
}  // namespace zt
