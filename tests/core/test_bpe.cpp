// Byte-level BPE against the reference libraries: tests/tools/bpe_reference.py trains small
// tokenizers with Hugging Face `tokenizers`, writes them in every supported format, and
// records the ids `tokenizers` and `tiktoken` give for a corpus of hard cases; ours must
// equal them and decode back to the text. Needs the Python of scripts/install-deps.sh (.venv).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/data/bpe.h"
#include "core/data/bpe_files.h"
#include "core/data/prepare.h"
#include "core/data/nfc.h"
#include "core/data/token_file.h"
#include "core/data/tokenizer.h"
#include "tests/support/errors.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

using ::testing::HasSubstr;
using testing::error_of;
using testing::TempDir;

namespace fs = std::filesystem;

// Runs the reference script into `dir`; an error (not a skip) when its Python is missing.
::testing::AssertionResult make_reference(const fs::path& dir) {
  const std::string python = ZT_PYTHON;
  if (!fs::exists(python))
    return ::testing::AssertionFailure()
           << "Python with tokenizers and tiktoken not found at " << python
           << ": run scripts/install-deps.sh (it creates .venv), or configure with -DZT_PYTHON=/path/to/python";
  auto r = testing::run_command("'" + python + "' tests/tools/bpe_reference.py '" + dir.string() +
                                "' --train data/tinyshakespeare.txt");
  if (r.exit_code != 0) return ::testing::AssertionFailure() << "bpe_reference.py failed:\n" << r.output;
  return ::testing::AssertionSuccess();
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

TEST(BpeReference, IdsEqualTokenizersAndTiktokenInEveryFormat) {
  TempDir tmp;
  ASSERT_TRUE(make_reference(tmp.path()));
  const nlohmann::json expected = read_json(tmp.path() / "expected.json");
  const auto texts = expected["texts"].get<std::vector<std::string>>();
  ASSERT_GE(expected["ids"].size(), 6u);
  for (const auto& [file, per_text] : expected["ids"].items()) {
    SCOPED_TRACE(file);
    auto tok = load_tokenizer((tmp.path() / file).string());
    EXPECT_EQ(tok->kind(), "bpe");
    // Saved as a run saves it (a record plus copies), it loads back to the same tokenizer.
    const fs::path saved = tmp.path() / "saved" / file;
    fs::create_directories(saved);
    tok->save((saved / "vocab.json").string());
    auto reloaded = load_tokenizer((saved / "vocab.json").string());
    for (size_t i = 0; i < texts.size(); ++i) {
      SCOPED_TRACE("text " + std::to_string(i) + ": " + texts[i].substr(0, 60));
      const std::vector<uint32_t> ids = tok->encode(texts[i]);
      EXPECT_EQ(ids, per_text[i].get<std::vector<uint32_t>>());
      // A normalizing tokenizer decodes to the normalized text, as Hugging Face's does.
      EXPECT_EQ(tok->decode(ids), file.starts_with("qwen2-nfc") ? unicode::nfc(texts[i]) : texts[i]);
      EXPECT_EQ(reloaded->encode(texts[i]), ids);
    }
  }
  // The whole corpus as one text, and tinyshakespeare, decode to themselves.
  std::string all;
  for (const auto& t : texts) all += t;
  auto hf = load_tokenizer((tmp.path() / "gpt2.tokenizer.json").string());
  const std::string shakespeare = read_text_file(ZT_SOURCE_DIR "/data/tinyshakespeare.txt");
  for (const std::string* text : std::vector<const std::string*>{&all, &shakespeare}) {
    const auto ids = hf->encode(*text);
    EXPECT_EQ(hf->decode(ids), *text);
  }
}

TEST(BpeReference, PrepareInChunksGivesTheIdsOfTheWholeTextAndCopiesTheTokenizer) {
  TempDir tmp;
  ASSERT_TRUE(make_reference(tmp.path()));
  const nlohmann::json expected = read_json(tmp.path() / "expected.json");
  std::string text = read_text_file(ZT_SOURCE_DIR "/data/tinyshakespeare.txt").substr(0, 200000);
  for (const auto& t : expected["texts"]) text += t.get<std::string>() + "\n";
  const fs::path in = tmp.path() / "corpus.txt";
  std::ofstream(in, std::ios::binary) << text;
  for (const char* file : {"llama3.tokenizer.json", "test.tiktoken", "gpt2/vocab.json", "qwen2-nfc.tokenizer.json"}) {
    SCOPED_TRACE(file);
    auto tok = load_tokenizer((tmp.path() / file).string());
    PrepareOptions o;
    o.inputs = {in.string()};
    o.out_dir = (tmp.path() / "out").string();
    o.val_fraction = 0.1;
    o.chunk_bytes = 4096;  // many chunks, each cut at a newline
    PreparedText p = prepare_corpus(*tok, o);
    TokenFile train = TokenFile::open(p.train_path), val = TokenFile::open(p.val_path);
    EXPECT_EQ(train.bits(), 16);
    std::vector<uint32_t> ids;
    for (int64_t i = 0; i < train.size(); ++i) ids.push_back(train[i]);
    for (int64_t i = 0; i < val.size(); ++i) ids.push_back(val[i]);
    EXPECT_EQ(ids, tok->encode(text));
    // The record beside the tokens names a copy of the tokenizer, which decodes them.
    auto saved = load_tokenizer(p.vocab_path);
    EXPECT_EQ(saved->decode(ids), std::string(file).starts_with("qwen2-nfc") ? unicode::nfc(text) : text);
  }
  EXPECT_TRUE(fs::exists(tmp.path() / "out" / "corpus.tokenizer.json"));
  EXPECT_TRUE(fs::exists(tmp.path() / "out" / "corpus.tokenizer.tiktoken"));
  EXPECT_TRUE(fs::exists(tmp.path() / "out" / "corpus.encoder.json"));
  EXPECT_TRUE(fs::exists(tmp.path() / "out" / "corpus.vocab.bpe"));
}

TEST(BpeReference, PrepareTrainGenerateWithABpeTokenizer) {
  TempDir tmp;
  ASSERT_TRUE(make_reference(tmp.path()));
  const std::string tok = (tmp.path() / "gpt2.tokenizer.json").string();
  const std::string out = (tmp.path() / "data").string();
  auto r = testing::run_zt("data prepare data/tinyshakespeare.txt --tokenizer " + tok + " -o " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("uint16 tokens"));
  EXPECT_THAT(r.output, HasSubstr("bpe tokenizer, vocab 2000"));
  r = testing::run_zt("train configs/test-tiny-gpt2.yaml --set run.out_dir=" + tmp.str() + "/runs --set train.steps=2 " +
                      "--set data.tokenizer=none --set data.train=" + out + "/tinyshakespeare.train.bin");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path run = tmp.path() / "runs" / "test-tiny-gpt2";
  EXPECT_TRUE(fs::exists(run / "tokenizer.json"));
  r = testing::run_zt("generate " + run.string() + " --prompt 'ROMEO: ça' --tokens 20 --seed 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("ROMEO: ça"));
  // A text corpus with data.tokenizer: PATH is tokenized into the run with that tokenizer.
  r = testing::run_zt("train configs/test-tiny-gpt2.yaml --set run.out_dir=" + tmp.str() + "/runs2 --set train.steps=2 " +
                      "--set data.tokenizer=" + tok);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("vocab 2000"));
  EXPECT_TRUE(fs::exists(tmp.path() / "runs2" / "test-tiny-gpt2" / "tokenizer.json"));
}

// Files written here by hand: malformed or unsupported input is an error naming the field.
TEST(BpeFiles, UnsupportedOrMalformedFilesAreErrorsNamingTheField) {
  TempDir tmp;
  auto write = [&](const std::string& name, const std::string& content) {
    const fs::path p = tmp.path() / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  };
  nlohmann::json vocab;
  for (int b = 0; b < 256; ++b) {
    // GPT-2's byte-to-character mapping for the byte values that are printable as themselves.
    if ((b >= '!' && b <= '~')) vocab[std::string(1, static_cast<char>(b))] = b;
  }
  nlohmann::json base = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}},
                         {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}}};
  EXPECT_EQ(load_tokenizer(write("ok.json", base.dump()))->encode("ab"), (std::vector<uint32_t>{'a', 'b'}));
  struct Case {
    std::string name;
    nlohmann::json patch;
    std::string message;
  } cases[] = {
      {"wordpiece", {{"model", {{"type", "WordPiece"}}}}, "model.type is \"WordPiece\"; only BPE"},
      {"norm", {{"normalizer", {{"type", "Lowercase"}}}}, "normalizer {\"type\":\"Lowercase\"} is not supported (only NFC"},
      {"norm-seq", {{"normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "NFKC"}}}}}}},
       "normalizer.normalizers[1] {\"type\":\"NFKC\"} is not supported (only NFC)"},
      {"norm-added", {{"normalizer", {{"type", "NFC"}}}, {"added_tokens", {{{"id", 300}, {"content", "<x>"}, {"normalized", true}}}}},
       "added token {\"content\":\"<x>\",\"id\":300,\"normalized\":true} has normalized true, which is not "
       "supported with a normalizer"},
      {"prefix", {{"pre_tokenizer", {{"add_prefix_space", true}}}}, "unsupported pre_tokenizer"},
      {"regex",
       {{"pre_tokenizer", {{"type", "Sequence"},
                           {"pretokenizers", {{{"type", "Split"}, {"pattern", {{"Regex", "\\w+"}}}, {"behavior", "Isolated"}},
                                              {{"type", "ByteLevel"}, {"use_regex", false}}}}}}},
       "pre_tokenizer Split regex is not one of the supported patterns (GPT-2, Llama 3 / cl100k, Qwen2): \\w+"},
      {"merge", {{"model", {{"merges", {"a b"}}}}}, "merge 0 (\"a b\") uses or makes a token that is not in the vocab"},
      {"mergeform", {{"model", {{"merges", {"abc"}}}}}, "merge 0 is \"abc\", expected two tokens"},
      {"fallback", {{"model", {{"byte_fallback", true}}}}, "model.byte_fallback is true"},
      // An id is a table index: a huge one is refused, not allocated (found by fuzz_bpe).
      {"huge-id", {{"model", {{"vocab", {{"zz", 132444239}}}}}},
       "vocab entry \"zz\" has id 132444239, expected a non-negative integer below 2^24"},
      {"huge-added", {{"added_tokens", {{{"id", 16777216}, {"content", "<x>"}}}}},
       "added token {\"content\":\"<x>\",\"id\":16777216} needs an integer id below 2^24"},
      // Fields of another type than expected are errors naming the field, not a JSON library
      // exception (found by fuzz_bpe: "lstrip": "BPE").
      {"lstrip-type", {{"added_tokens", {{{"id", 300}, {"content", "<x>"}, {"lstrip", "BPE"}}}}},
       "added token {\"content\":\"<x>\",\"id\":300,\"lstrip\":\"BPE\"} has lstrip \"BPE\", which is not supported"},
      {"lstrip-true", {{"added_tokens", {{{"id", 300}, {"content", "<x>"}, {"lstrip", true}}}}}, "added token {\"content\":\"<x>\",\"id\":300,\"lstrip\":true} has lstrip true, which is not supported"},
      {"type-number", {{"model", {{"type", 7}}}}, "model.type is 7; only BPE is supported"},
      {"ignore-merges-type", {{"model", {{"ignore_merges", "yes"}}}}, "model.ignore_merges is \"yes\"; expected true or false"},
      {"decoder-type", {{"decoder", "ByteLevel"}}, "decoder \"ByteLevel\" is not supported (expected ByteLevel)"},
      {"prefix-type", {{"pre_tokenizer", {{"add_prefix_space", "no"}}}}, "unsupported pre_tokenizer"},
      {"split-type",
       {{"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {"Split", {{"type", "ByteLevel"}, {"use_regex", false}}}}}}},
       "unsupported pre_tokenizer"},
      {"norm-type", {{"normalizer", {{"type", "Sequence"}, {"normalizers", "NFC"}}}}, "normalizer {\"normalizers\":\"NFC\",\"type\":\"Sequence\"} is not supported"},
  };
  for (const auto& c : cases) {
    nlohmann::json j = base;
    j.merge_patch(c.patch);
    const std::string p = write(c.name + ".json", j.dump());
    EXPECT_THAT(error_of([&] { load_tokenizer(p); }), HasSubstr(p + ": " + c.message)) << c.name;
  }
  // Bytes with no token: encoding text that holds one is an error, not a silent drop.
  auto tok = load_tokenizer(write("ok2.json", base.dump()));
  EXPECT_THAT(error_of([&] { tok->encode("a b"); }), HasSubstr("byte 0x20 has no token"));

  EXPECT_THAT(error_of([&] { load_tokenizer(write("g/vocab.json", vocab.dump())); }),
              HasSubstr("a GPT-2 vocab needs its merges beside it"));
  EXPECT_THAT(error_of([&] { load_tokenizer(write("t/o200k_base.tiktoken", "YQ== 0\n")); }),
              HasSubstr("o200k's pre-tokenizer pattern is not supported"));
  EXPECT_THAT(error_of([&] { load_tokenizer(write("t/bad.tiktoken", "YQ== 0\n!!! 1\n")); }),
              HasSubstr("line 2 is \"!!! 1\", expected a base64 token and its rank"));
  EXPECT_THAT(error_of([&] { load_tokenizer(write("t/huge.tiktoken", "YQ== 0\nYg== 4000000000\n")); }),
              HasSubstr("line 2 is \"Yg== 4000000000\", expected a base64 token and its rank"));
  EXPECT_EQ(tiktoken_pattern_for("x/r50k_base.tiktoken"), PretokPattern::gpt2);
  EXPECT_EQ(tiktoken_pattern_for("x/cl100k_base.tiktoken"), PretokPattern::cl100k);
}

}  // namespace
}  // namespace zt
