// The key reference of `zt train --help`: every schema key has a meaning, the meanings table
// names only schema keys, and types and defaults come from the schema itself.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "core/config.h"
#include "core/config_docs.h"

namespace zt {
namespace {

using ::testing::HasSubstr;

TEST(ConfigDocs, EverySchemaKeyHasAMeaning) {
  for (const std::string& key : config_keys()) EXPECT_FALSE(config_key_doc(key).empty()) << key << " has no meaning";
}

TEST(ConfigDocs, TheTableNamesOnlySchemaKeysOnce) {
  const std::vector<std::string> schema = config_keys();
  std::set<std::string> seen;
  for (const std::string& key : documented_config_keys()) {
    EXPECT_TRUE(std::find(schema.begin(), schema.end(), key) != schema.end()) << key << " is not a schema key";
    EXPECT_TRUE(seen.insert(key).second) << key << " is documented twice";
  }
}

TEST(ConfigDocs, KeysAreDescribedFromTheDefaultConfig) {
  const std::vector<ConfigKeyInfo> keys = describe_config_keys();
  ASSERT_EQ(keys.size(), config_keys().size());
  auto find = [&](const std::string& path) {
    auto it = std::find_if(keys.begin(), keys.end(), [&](const ConfigKeyInfo& k) { return k.path == path; });
    EXPECT_NE(it, keys.end()) << path;
    return it == keys.end() ? ConfigKeyInfo{} : *it;
  };
  const Config defaults;
  const ConfigKeyInfo layers = find("model.n_layer");
  EXPECT_EQ(layers.type, "int");
  EXPECT_EQ(layers.default_value, std::to_string(defaults.model.n_layer));
  EXPECT_EQ(layers.range, "[1, 4096]");
  const ConfigKeyInfo family = find("model.family");
  EXPECT_EQ(family.type, "enum");
  EXPECT_EQ(family.default_value, to_string(defaults.model.family));
  EXPECT_EQ(family.choices, "gpt2, llama");
  EXPECT_EQ(find("optim.lr").range, "> 0");
  EXPECT_EQ(find("train.log_every").range, ">= 1");
  EXPECT_EQ(find("data.val_fraction").range, "[0, 1)");
  EXPECT_EQ(find("optim.schedule.kind").choices, "constant, cosine, linear");
  EXPECT_EQ(find("optim.no_decay").choices, "bias, norm, embedding");
  EXPECT_EQ(find("model.tie_embeddings").default_value, "null");
  EXPECT_EQ(find("run.name").default_value, "\"" + defaults.run.name + "\"");
  // The defaults shown are those dump_config writes for a default config, key for key.
  const std::string dumped = dump_config(defaults);
  for (const ConfigKeyInfo& k : keys) {
    const std::string leaf = k.path.substr(k.path.rfind('.') + 1);
    EXPECT_THAT(dumped, HasSubstr(leaf + ": " + k.default_value + "\n")) << k.path;
  }
}

TEST(ConfigDocs, TheReferenceGroupsEveryKeyBySectionWithTypeDefaultAndMeaning) {
  const std::string ref = config_reference();
  std::istringstream lines(ref);
  std::string section;
  std::set<std::string> listed;
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line[0] != ' ' && line.back() == ':') section = line.substr(0, line.size() - 1);
    if (line.rfind("  ", 0) != 0) continue;
    std::istringstream words(line);
    std::string key;
    words >> key;
    if (key == "key") continue;  // the header
    EXPECT_EQ(key.substr(0, key.find('.')), section) << line;
    listed.insert(key);
  }
  const std::vector<std::string> schema = config_keys();
  EXPECT_EQ(listed, std::set<std::string>(schema.begin(), schema.end()));
  EXPECT_THAT(ref, HasSubstr("model.family"));
  EXPECT_THAT(ref, HasSubstr("gpt2|llama"));
  EXPECT_THAT(ref, HasSubstr("int in [1, 4096]"));
  EXPECT_THAT(ref, HasSubstr("float > 0"));
  EXPECT_THAT(ref, HasSubstr("list of bias|norm|embedding"));
  EXPECT_THAT(ref, HasSubstr(std::string(config_key_doc("parallel.zero_stage"))));
}

}  // namespace
}  // namespace zt
