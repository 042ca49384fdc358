// Tokenizers: vocabulary files, malformed-file errors, unknown-character errors.
// (The Shakespeare round trip and byte round trip are in test_data.cpp.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "core/data/tokenizer.h"
#include "core/error.h"
#include "tests/support/errors.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

using ::testing::HasSubstr;
using testing::error_of;
using testing::TempDir;

TEST(Tokenizer, CharVocabularyIsTheSortedDistinctCodePoints) {
  CharTokenizer tok = CharTokenizer::from_text("hello world\n");
  ASSERT_EQ(tok.vocab_size(), 9);
  // ids follow byte order: '\n' ' ' d e h l o r w
  EXPECT_EQ(tok.encode("\n dehlorw"), (std::vector<uint32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(tok.decode(tok.encode("world hello")), "world hello");
  EXPECT_EQ(tok.kind(), "char");
}

TEST(Tokenizer, CharTokenizerWorksOnCodePointsOfAnyScript) {
  const std::string greek = "Καλημέρα κόσμε 😀 ça\n";
  CharTokenizer tok = CharTokenizer::from_text(greek);
  EXPECT_EQ(tok.vocab_size(), 16);  // \n space a ç Κ έ α ε η κ λ μ ρ σ ό 😀
  const auto ids = tok.encode(greek);
  EXPECT_EQ(ids.size(), 20u);  // one id per character, not per byte
  EXPECT_EQ(tok.decode(ids), greek);
  EXPECT_EQ(tok.decode(std::vector<uint32_t>{ids[0]}), "Κ");
  TempDir tmp;
  tok.save((tmp.path() / "v.json").string());
  EXPECT_EQ(load_tokenizer((tmp.path() / "v.json").string())->encode(greek), ids);
  EXPECT_THAT(error_of([] { CharTokenizer::from_text("ok\xff"); }), HasSubstr("malformed UTF-8 (byte 0xFF) at byte offset 2"));
}

TEST(Tokenizer, CharVocabFileHoldsCodePoints) {
  TempDir tmp;
  const std::string path = (tmp.path() / "v.json").string();
  CharTokenizer::from_text("ba\n").save(path);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  const auto j = nlohmann::json::parse(testing::read_file(path));
  EXPECT_EQ(j, nlohmann::json::parse(R"({"kind":"char","unit":"codepoint","vocab":[10,97,98]})"));
  ByteTokenizer().save(path);  // overwrites in place
  EXPECT_EQ(nlohmann::json::parse(testing::read_file(path)), nlohmann::json::parse(R"({"kind":"byte"})"));
  auto loaded = load_tokenizer(path);
  EXPECT_EQ(loaded->kind(), "byte");
  EXPECT_EQ(loaded->vocab_size(), 256);
}

TEST(Tokenizer, UnknownCharacterErrorNamesItAndItsPosition) {
  CharTokenizer tok = CharTokenizer::from_text("abc");
  EXPECT_EQ(error_of([&] { tok.encode("abcabz"); }),
            "character 'z' (byte 122) at position 5 is not in the 3-character vocabulary");
  EXPECT_THAT(error_of([&] { tok.encode("a\nb"); }), HasSubstr("character '\\n' (byte 10) at position 1"));
  EXPECT_THAT(error_of([&] { tok.encode("ab\xc3\xa9"); }), HasSubstr("character 'é' (U+00E9) at position 2"));
  EXPECT_THAT(error_of([&] { tok.encode("ab\xff"); }), HasSubstr("malformed UTF-8 (byte 0xFF) at position 2"));
}

TEST(Tokenizer, LoadRejectsMalformedVocabFiles) {
  TempDir tmp;
  auto write = [&](const std::string& text) {
    const std::string p = (tmp.path() / "v.json").string();
    std::ofstream(p) << text;
    return p;
  };
  const struct {
    const char* text;
    const char* message;
  } cases[] = {
      {"{not json", "not a valid tokenizer file (JSON)"},
      {"[1, 2, 3]", "not a tokenizer file: expected a JSON object"},
      {R"({"vocab": [1]})", "expected a vocab record with a string \"kind\""},
      {R"({"kind": 3})", "\"kind\" must be a string"},
      {R"({"kind": "wordpiece"})", "unknown tokenizer kind 'wordpiece' (expected char, byte or bpe)"},
      {R"({"kind": "bpe"})", "a bpe record needs a string \"format\" and a list \"files\""},
      {R"({"kind": "bpe", "format": "hf", "files": ["a", "b"]})", "bpe record with format 'hf' and 2 files"},
      {R"({"kind": "char"})", "needs a non-empty \"vocab\" list"},
      {R"({"kind": "char", "vocab": []})", "needs a non-empty \"vocab\" list"},
      {R"({"kind": "char", "vocab": [10, 300]})", "vocab entry 1 is 300, expected an ASCII byte value 0..127"},
      {R"({"kind": "char", "unit": "codepoint", "vocab": [10, 1114112]})", "expected a code point 0..0x10FFFF"},
      {R"({"kind": "char", "unit": "byte", "vocab": [10]})", "unknown char vocab unit \"byte\""},
      {R"({"kind": "char", "vocab": [10, "a"]})", "vocab entry 1 is \"a\""},
      {R"({"kind": "char", "vocab": [10, 97, 10]})", "vocab entry 2 repeats code point 10"},
  };
  for (const auto& c : cases) {
    const std::string p = write(c.text);
    const std::string err = error_of([&] { load_tokenizer(p); });
    EXPECT_THAT(err, HasSubstr(p + ": ")) << c.text;
    EXPECT_THAT(err, HasSubstr(c.message)) << c.text;
  }
  const std::string missing = (tmp.path() / "none.json").string();
  EXPECT_EQ(error_of([&] { load_tokenizer(missing); }), "tokenizer file not found: " + missing);
}

TEST(Tokenizer, SaveIntoAMissingDirectoryFailsCleanly) {
  TempDir tmp;
  const auto p = tmp.path() / "no-dir" / "v.json";
  EXPECT_THAT(error_of([&] { ByteTokenizer().save(p.string()); }), HasSubstr("cannot write"));
  EXPECT_FALSE(std::filesystem::exists(p.parent_path()));
}

TEST(Tokenizer, MakeTokenizerByKind) {
  EXPECT_EQ(make_tokenizer("char", "xyz")->vocab_size(), 3);
  EXPECT_EQ(make_tokenizer("byte", "")->vocab_size(), 256);
  EXPECT_EQ(error_of([&] { make_tokenizer("bpe", ""); }),
            "unknown tokenizer 'bpe' (expected char, byte or the path of a tokenizer file)");
}

}  // namespace
}  // namespace zt
