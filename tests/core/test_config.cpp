#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/config.h"
#include "core/error.h"

namespace zt {
namespace {

using ::testing::HasSubstr;

const char* kMinimal = "data:\n  train: corpus.txt\n";

std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config(yaml, "cfg.yaml", overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Config, DefaultsAndFamilyResolution) {
  Config c = parse_config(kMinimal, "cfg.yaml");
  EXPECT_EQ(c.model.family, ModelFamily::gpt2);
  EXPECT_EQ(c.model.n_kv_head, c.model.n_head);
  EXPECT_EQ(c.model.d_ff, 4 * c.model.d_model);
  EXPECT_EQ(c.model.max_seq_len, c.data.seq_len);
  EXPECT_TRUE(*c.model.tie_embeddings);
  EXPECT_TRUE(*c.model.attn_bias);
  EXPECT_EQ(c.optim.name, OptimName::adamw);
  EXPECT_EQ(c.optim.no_decay, (std::vector<std::string>{"bias", "norm", "embedding"}));

  Config l = parse_config("model:\n  family: llama\n  d_model: 96\n  n_head: 6\n  n_kv_head: 2\n" + std::string(kMinimal), "cfg.yaml");
  EXPECT_FALSE(*l.model.tie_embeddings);
  EXPECT_FALSE(*l.model.attn_bias);
  EXPECT_EQ(l.model.n_kv_head, 2);
  EXPECT_EQ(l.model.d_ff, 256);  // 64 * ceil(8 * 96 / 3 / 64)
}

TEST(Config, UnknownKeyNamesPathLineAndSuggestion) {
  std::string e = error_of("model:\n  n_layer: 2\n  n_heads: 4\n" + std::string(kMinimal));
  EXPECT_THAT(e, HasSubstr("cfg.yaml:3"));
  EXPECT_THAT(e, HasSubstr("unknown key 'model.n_heads'"));
  EXPECT_THAT(e, HasSubstr("did you mean 'model.n_head'"));
  EXPECT_THAT(error_of("modle:\n  n_layer: 2\n"), HasSubstr("unknown key 'modle'"));
  EXPECT_THAT(error_of("optim:\n  schedule:\n    knd: cosine\n" + std::string(kMinimal)),
              HasSubstr("'optim.schedule.knd'"));
}

TEST(Config, WrongTypesNameTheKeyAndLine) {
  EXPECT_THAT(error_of(std::string(kMinimal) + "model:\n  n_layer: six\n"),
              HasSubstr("cfg.yaml:4: model.n_layer: expected an integer, got 'six'"));
  EXPECT_THAT(error_of(std::string(kMinimal) + "model:\n  n_layer: 2.5\n"), HasSubstr("model.n_layer: expected an integer"));
  EXPECT_THAT(error_of("data:\n  train: x\n  shuffle: maybe\n"), HasSubstr("data.shuffle: expected true or false"));
  EXPECT_THAT(error_of(std::string(kMinimal) + "data:\n  seq_len: 8\n"), HasSubstr("cfg.yaml:3: duplicate key 'data'"));
  EXPECT_THAT(error_of(std::string(kMinimal) + "optim:\n  lr: [1, 2]\n"), HasSubstr("optim.lr: expected a number, got a list"));
  EXPECT_THAT(error_of("model: 3\n" + std::string(kMinimal)), HasSubstr("model: expected a section"));
  EXPECT_THAT(error_of(std::string(kMinimal) + "optim:\n  betas: [0.9]\n"), HasSubstr("optim.betas: expected a list of two numbers"));
}

TEST(Config, OutOfRangeAndBadChoices) {
  EXPECT_THAT(error_of(std::string(kMinimal) + "optim:\n  lr: -1\n"), HasSubstr("optim.lr: must be > 0, got -1"));
  EXPECT_THAT(error_of(std::string(kMinimal) + "model:\n  family: gpt3\n"),
              HasSubstr("model.family: must be one of gpt2, llama, got 'gpt3'"));
  EXPECT_THAT(error_of(std::string(kMinimal) + "optim:\n  betas: [0.9, 1.0]\n"), HasSubstr("optim.betas: must be in [0, 1)"));
  EXPECT_THAT(error_of(std::string(kMinimal) + "train:\n  steps: 0\n"), HasSubstr("train.steps: must be >= 1"));
  EXPECT_THAT(error_of(std::string(kMinimal) + "optim:\n  no_decay: [bias, weights]\n"),
              HasSubstr("optim.no_decay: each entry must be one of bias, norm, embedding, got 'weights'"));
}

TEST(Config, CrossFieldChecksNameBothKeys) {
  EXPECT_THAT(error_of(std::string(kMinimal) + "model:\n  n_head: 5\n"),
              HasSubstr("model.d_model (384) must be divisible by model.n_head (5)"));
  EXPECT_THAT(error_of(std::string(kMinimal) + "model:\n  n_head: 6\n  n_kv_head: 4\n"),
              HasSubstr("model.n_kv_head (4) must divide model.n_head (6)"));
  EXPECT_THAT(error_of(std::string(kMinimal) + "optim:\n  lr: 0.001\n  schedule:\n    min_lr: 0.1\n"),
              HasSubstr("optim.schedule.min_lr (0.1) must be <= optim.lr (0.001)"));
  EXPECT_THAT(error_of(std::string(kMinimal) + "model:\n  max_seq_len: 8\n"), HasSubstr("model.max_seq_len (8) must be >= data.seq_len (256)"));
  EXPECT_THAT(error_of(std::string(kMinimal) + "model:\n  attn_bias: false\n"), HasSubstr("model.attn_bias"));
  EXPECT_THAT(error_of("model:\n  n_layer: 2\n"), HasSubstr("data.train is required"));
  EXPECT_THAT(error_of(std::string(kMinimal) + "run:\n  name: a/b\n"), HasSubstr("run.name"));
}

TEST(Config, SetOverridesScalarsListsAndNestedKeys) {
  Config c = parse_config(kMinimal, "cfg.yaml",
                          {"model.n_layer=3", "optim.betas=[0.8, 0.99]", "optim.schedule.kind=linear",
                           "data.shuffle=false", "run.name=exp-2"});
  EXPECT_EQ(c.model.n_layer, 3);
  EXPECT_EQ(c.optim.betas[1], 0.99);
  EXPECT_EQ(c.optim.schedule.kind, LrScheduleKind::linear);
  EXPECT_FALSE(c.data.shuffle);
  EXPECT_EQ(c.run.name, "exp-2");
  // An override replaces what the file says.
  EXPECT_EQ(parse_config("model:\n  n_layer: 9\n" + std::string(kMinimal), "cfg.yaml", {"model.n_layer=2"}).model.n_layer, 2);
}

TEST(Config, BadOverridesNameTheSet) {
  EXPECT_THAT(error_of(kMinimal, {"model.n_layers=3"}), HasSubstr("--set model.n_layers: unknown key"));
  EXPECT_THAT(error_of(kMinimal, {"model.n_layers=3"}), HasSubstr("did you mean 'model.n_layer'"));
  EXPECT_THAT(error_of(kMinimal, {"model.n_layer"}), HasSubstr("expected key=value"));
  EXPECT_THAT(error_of(kMinimal, {"model.n_layer=zero"}), HasSubstr("--set model.n_layer: model.n_layer: expected an integer"));
}

TEST(Config, DumpThenParseRoundTrips) {
  Config c = parse_config("model:\n  family: llama\n  n_head: 4\n  n_kv_head: 2\n  d_model: 64\n" + std::string(kMinimal), "cfg.yaml",
                          {"optim.lr=0.00123456789", "run.out_dir=some dir/with \"quotes\"", "optim.no_decay=[]"});
  Config again = parse_config(dump_config(c), "dump.yaml");
  EXPECT_EQ(c, again);
  EXPECT_THAT(dump_config(c), HasSubstr("family: llama"));
}

TEST(Config, FilesAndSyntaxErrors) {
  EXPECT_THAT(error_of(""), HasSubstr("empty"));
  EXPECT_THAT(error_of("- a\n- b\n"), HasSubstr("top level must be a map"));
  EXPECT_THAT(error_of("model:\n  n_layer: [1, 2\n"), HasSubstr("YAML syntax error"));
  try {
    load_config("/nonexistent/zt.yaml");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("config file not found: /nonexistent/zt.yaml"));
  }
  for (const char* name : {"test-tiny-gpt2.yaml", "test-tiny-llama.yaml", "shakespeare-char.yaml",
                           "tiny-llama.yaml", "gpt2-124m.yaml"}) {
    const std::string path = std::string(ZT_SOURCE_DIR) + "/configs/" + name;
    EXPECT_NO_THROW(load_config(path)) << path;
  }
}

}  // namespace
}  // namespace zt
