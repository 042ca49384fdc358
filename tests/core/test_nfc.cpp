// NFC against Python's unicodedata.normalize on every code point that NFC touches and on
// seeded random mixes of letters and marks (tests/tools/nfc_reference.py), with the same
// Unicode version as our tables.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/data/nfc.h"
#include "core/data/unicode_tables.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

namespace fs = std::filesystem;

TEST(Nfc, EqualsUnicodedataNormalize) {
  const std::string python = ZT_PYTHON;
  ASSERT_TRUE(fs::exists(python)) << "Python not found at " << python << ": run scripts/install-deps.sh";
  testing::TempDir tmp;
  const fs::path out = tmp.path() / "nfc.json";
  auto r = testing::run_command("'" + python + "' tests/tools/nfc_reference.py '" + out.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(out);
  const nlohmann::json j = nlohmann::json::parse(in);
  ASSERT_EQ(j["unicode"], unicode::kUnicodeVersion) << "the tables and this Python disagree on the Unicode version";
  int failures = 0, changed = 0;
  for (const auto& c : j["cases"]) {
    const std::string text = c[0], want = c[1];
    std::string got;
    const bool rewritten = unicode::to_nfc(text, got);
    if (!rewritten) got = text;
    changed += rewritten;
    if (got != want && ++failures <= 20) ADD_FAILURE() << "NFC of '" << text << "': got '" << got << "', want '" << want << "'";
    // Already-normalized text is reported unchanged (no copy).
    if (text == want && rewritten && ++failures <= 20) ADD_FAILURE() << "'" << text << "' is NFC but was rewritten";
  }
  EXPECT_EQ(failures, 0);
  EXPECT_GT(j["cases"].size(), 10000u);
  EXPECT_GT(changed, 3000);
}

TEST(Nfc, InvalidUtf8PassesThroughAndStopsComposition) {
  // e, an invalid byte, then a combining acute: nothing composes across the bad byte.
  EXPECT_EQ(unicode::nfc("e\xFF\xCC\x81"), "e\xFF\xCC\x81");
  EXPECT_EQ(unicode::nfc("e\xCC\x81\xFF"), "\xC3\xA9\xFF");
}

}  // namespace
}  // namespace zt
