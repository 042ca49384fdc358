#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "core/config.h"
#include "core/error.h"

namespace zt {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

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

TEST(Config, RuntimeDeviceIsCpuUnlessSetAndNamedInErrors) {
  EXPECT_EQ(parse_config(kMinimal, "cfg.yaml").runtime.device, RuntimeDevice::cpu);
  EXPECT_EQ(parse_config(kMinimal, "cfg.yaml", {"runtime.device=cuda"}).runtime.device, RuntimeDevice::cuda);
  const std::string bad = error_of(kMinimal, {"runtime.device=gpu"});
  EXPECT_THAT(bad, HasSubstr("runtime.device"));
  EXPECT_THAT(bad, HasSubstr("cuda"));  // the choices are listed
  // MoE routes on the host: refused on a GPU by the schema, naming both keys.
  const std::string moe = error_of("model:\n  family: llama\n  moe:\n    n_experts: 4\n" + std::string(kMinimal),
                                   {"runtime.device=cuda"});
  EXPECT_THAT(moe, HasSubstr("runtime.device"));
  EXPECT_THAT(moe, HasSubstr("model.moe"));
  EXPECT_THAT(dump_config(parse_config(kMinimal, "cfg.yaml", {"runtime.device=cuda"})), HasSubstr("device: cuda"));
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

TEST(Config, WrongTypesOfEveryKind) {
  const std::string m = kMinimal;
  EXPECT_THAT(error_of(m + "model:\n  n_layer: true\n"), HasSubstr("cfg.yaml:4: model.n_layer: expected an integer, got 'true'"));
  EXPECT_THAT(error_of(m + "model:\n  n_layer: {a: 1}\n"), HasSubstr("cfg.yaml:4: model.n_layer: expected an integer, got a section"));
  EXPECT_THAT(error_of(m + "run:\n  name: [a, b]\n"), HasSubstr("cfg.yaml:4: run.name: expected a string, got a list"));
  EXPECT_THAT(error_of(m + "run:\n  seed: -1\n"), HasSubstr("run.seed: expected a non-negative integer, got '-1'"));
  EXPECT_THAT(error_of(m + "optim:\n  eps: tiny\n"), HasSubstr("cfg.yaml:4: optim.eps: expected a number, got 'tiny'"));
  EXPECT_THAT(error_of(m + "optim:\n  schedule: constant\n"), HasSubstr("optim.schedule: expected a section of keys"));
  EXPECT_THAT(error_of(m + "model:\n  tie_embeddings: 2\n"), HasSubstr("model.tie_embeddings: expected true or false"));
  // A list used as a key is an input error, not a yaml-cpp exception escaping.
  EXPECT_THAT(error_of(m + "model:\n  [a]: 1\n"), HasSubstr("cfg.yaml:4: model: keys must be plain names"));
}

TEST(Config, RangeErrorsNameKeyAndLine) {
  const std::string m = kMinimal;
  EXPECT_THAT(error_of(m + "data:\n  val_fraction: 1\n"), HasSubstr("duplicate key"));
  EXPECT_THAT(error_of("data:\n  train: x\n  val_fraction: 1\n"), HasSubstr("cfg.yaml:3: data.val_fraction: must be in [0, 1), got 1"));
  EXPECT_THAT(error_of(m + "model:\n  n_kv_head: -1\n"), HasSubstr("cfg.yaml:4: model.n_kv_head: must be >= 0, got -1"));
  EXPECT_THAT(error_of(m + "optim:\n  momentum: 1\n"), HasSubstr("optim.momentum: must be in [0, 1)"));
  EXPECT_THAT(error_of(m + "optim:\n  schedule:\n    kind: step\n"),
              HasSubstr("cfg.yaml:5: optim.schedule.kind: must be one of constant, cosine, linear, got 'step'"));
  EXPECT_THAT(error_of("data:\n  train: x\n  tokenizer: bpe\n"), HasSubstr("data.tokenizer: must be one of char, byte, none"));
  EXPECT_THAT(error_of(m + "log:\n  level: error\n"), HasSubstr("log.level: must be one of debug, info, warn"));
}

TEST(Config, CrossFieldErrorsPointAtTheLineTheUserWrote) {
  // d_model keeps its default, so the line is n_head's.
  EXPECT_THAT(error_of(std::string(kMinimal) + "model:\n  n_head: 5\n"),
              HasSubstr("cfg.yaml:4: model.d_model (384) must be divisible by model.n_head (5)"));
  EXPECT_THAT(error_of(std::string(kMinimal) + "model:\n  family: llama\n  n_head: 4\n  d_model: 36\n"),
              HasSubstr("cfg.yaml:6: llama uses RoPE, which needs an even head dim"));
  EXPECT_THAT(error_of("data:\n  train: x\n  seq_len: 64\nmodel:\n  max_seq_len: 32\n"),
              HasSubstr("cfg.yaml:5: model.max_seq_len (32) must be >= data.seq_len (64)"));
  // n_kv_head > n_head cannot divide it.
  EXPECT_THAT(error_of(std::string(kMinimal) + "model:\n  n_kv_head: 12\n"), HasSubstr("model.n_kv_head (12) must divide model.n_head (6)"));
  // gpt2 with attn_bias false is an error; llama may have it either way.
  EXPECT_THAT(error_of(std::string(kMinimal) + "model:\n  attn_bias: false\n"), HasSubstr("cfg.yaml:4: model.attn_bias"));
  EXPECT_TRUE(*parse_config(std::string(kMinimal) + "model:\n  family: llama\n  attn_bias: true\n", "cfg.yaml").model.attn_bias);
  EXPECT_THAT(error_of("run:\n  name: x\n"), HasSubstr("cfg.yaml: data.train is required"));
  EXPECT_THAT(error_of("data:\n  train: ''\n"), HasSubstr("cfg.yaml:2: data.train is required"));
  EXPECT_THAT(error_of(std::string(kMinimal) + "run:\n  name: ''\n"), HasSubstr("cfg.yaml:4: run.name"));
}

TEST(Config, SuggestionsForTypos) {
  EXPECT_THAT(error_of(std::string(kMinimal) + "optim:\n  weight_decai: 0\n"),
              HasSubstr("cfg.yaml:4: unknown key 'optim.weight_decai' (did you mean 'optim.weight_decay'?)"));
  EXPECT_THAT(error_of("modle:\n  n_layer: 2\n"), HasSubstr("did you mean 'model'"));
  // A key in the wrong section is pointed to where it lives.
  EXPECT_THAT(error_of(std::string(kMinimal) + "train:\n  lr: 0.1\n"), HasSubstr("unknown key 'train.lr' (did you mean 'optim.lr'?)"));
  // Nothing close: no suggestion.
  EXPECT_THAT(error_of(std::string(kMinimal) + "model:\n  zzzzzzzz: 1\n"), Not(HasSubstr("did you mean")));
}

TEST(Config, SetOverridesComeAfterTheFileAndBeforeValidation) {
  // The file alone is invalid (384 % 5); the override fixes it before validation runs.
  Config c = parse_config(std::string(kMinimal) + "model:\n  n_head: 5\n", "cfg.yaml", {"model.n_head=4"});
  EXPECT_EQ(c.model.n_head, 4);
  // Resolution sees the overridden family.
  Config l = parse_config(kMinimal, "cfg.yaml", {"model.family=llama", " model.n_kv_head = 2"});
  EXPECT_EQ(l.model.family, ModelFamily::llama);
  EXPECT_EQ(l.model.n_kv_head, 2);
  EXPECT_FALSE(*l.model.tie_embeddings);
  // A value with '=' in it keeps everything after the first '='.
  EXPECT_EQ(parse_config(kMinimal, "cfg.yaml", {"model.init_from=a=b.safetensors"}).model.init_from, "a=b.safetensors");
  // A missing file section is created by the override.
  EXPECT_EQ(parse_config(kMinimal, "cfg.yaml", {"optim.no_decay=[bias]"}).optim.no_decay, std::vector<std::string>{"bias"});
  // Overrides alone are enough when the file is empty.
  EXPECT_EQ(parse_config("", "cfg.yaml", {"data.train=x"}).data.train, std::vector<std::string>{"x"});
}

TEST(Config, BadOverrideValuesNameTheSet) {
  EXPECT_THAT(error_of(kMinimal, {"optim.schedule.kind=cosin"}),
              HasSubstr("--set optim.schedule.kind: optim.schedule.kind: must be one of constant, cosine, linear, got 'cosin'"));
  EXPECT_THAT(error_of(kMinimal, {"optim.betas=[0.9,1.5]"}), HasSubstr("--set optim.betas: optim.betas: must be in [0, 1)"));
  EXPECT_THAT(error_of(kMinimal, {"model.n_layer=[1"}), HasSubstr("--set model.n_layer: cannot read value"));
  EXPECT_THAT(error_of(kMinimal, {"optim.lr=0.001", "optim.schedule.min_lr=0.01"}),
              HasSubstr("--set optim.schedule.min_lr: optim.schedule.min_lr (0.01) must be <= optim.lr (0.001)"));
  EXPECT_THAT(error_of(kMinimal, {"=3"}), HasSubstr("--set =3: expected key=value"));
  EXPECT_THAT(error_of(kMinimal, {"optim.schedule=3"}), HasSubstr("--set optim.schedule: 'optim.schedule' is a section"));
}

TEST(Config, DumpHasEveryKeyAndRoundTripsDefaults) {
  Config c = parse_config(kMinimal, "cfg.yaml");
  const std::string text = dump_config(c);
  for (const std::string& key : config_keys())
    EXPECT_THAT(text, HasSubstr(key.substr(key.rfind('.') + 1) + ":")) << key;
  EXPECT_THAT(text, HasSubstr("d_ff: 1536"));           // resolved, not 0
  EXPECT_THAT(text, HasSubstr("tie_embeddings: true"));  // resolved, not null
  EXPECT_EQ(parse_config(text, "dump.yaml"), c);
  Config changed = c;
  changed.optim.betas[0] = 0.5;
  EXPECT_NE(parse_config(text, "dump.yaml"), changed);  // equality is not vacuous
  EXPECT_EQ(to_string(ModelFamily::llama), "llama");
  EXPECT_EQ(to_string(TokenizerKind::char_level), "char");
  EXPECT_EQ(to_string(LrScheduleKind::cosine), "cosine");
  EXPECT_EQ(to_string(OptimName::sgd), "sgd");
  EXPECT_EQ(to_string(LogLevel::warn), "warn");
}

TEST(Config, LoadConfigFromAFileNamesItInErrors) {
  const auto dir = std::filesystem::temp_directory_path() / ("zt_config_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "exp.yaml").string();
  {
    std::ofstream(path) << "data:\n  train: corpus.txt\nmodel:\n  n_layer: 3\n";
  }
  Config c = load_config(path, {"train.steps=7"});
  EXPECT_EQ(c.model.n_layer, 3);
  EXPECT_EQ(c.train.steps, 7);
  {
    std::ofstream(path) << "data:\n  train: corpus.txt\nmodel:\n  n_layer: 3\n  n_heads: 2\n";
  }
  try {
    load_config(path);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path + ":5: unknown key 'model.n_heads'"));
  }
  {
    std::ofstream(path) << "data:\n  train: [x\n";
  }
  try {
    load_config(path);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path + ":"));
    EXPECT_THAT(e.what(), HasSubstr("YAML syntax error"));
  }
  // A directory is not a config file.
  try {
    load_config(dir.string());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("config file not found: " + dir.string()));
  }
  std::filesystem::remove_all(dir);
}

TEST(Config, TinyTestConfigsHaveTheirStatedShapes) {
  const std::string dir = std::string(ZT_SOURCE_DIR) + "/configs/";
  Config g = load_config(dir + "test-tiny-gpt2.yaml");
  EXPECT_EQ(g.model.family, ModelFamily::gpt2);
  EXPECT_EQ(g.model.n_layer, 2);
  EXPECT_EQ(g.model.n_head, 2);
  EXPECT_EQ(g.model.d_model, 32);
  EXPECT_EQ(g.data.train, std::vector<std::string>{"data/tinyshakespeare.txt"});
  EXPECT_EQ(g.data.tokenizer_kind(), TokenizerKind::char_level);
  EXPECT_EQ(g.data.seq_len, 16);
  EXPECT_EQ(g.train.micro_batch, 4);
  EXPECT_EQ(g.train.steps, 20);
  EXPECT_EQ(g.train.log_every, 5);
  EXPECT_EQ(g.optim.lr, 1e-3);
  EXPECT_EQ(g.optim.schedule.kind, LrScheduleKind::constant);
  Config l = load_config(dir + "test-tiny-llama.yaml");
  EXPECT_EQ(l.model.family, ModelFamily::llama);
  EXPECT_EQ(l.model.n_head, 4);
  EXPECT_EQ(l.model.n_kv_head, 2);
  EXPECT_EQ(l.model.d_model, 32);
  EXPECT_TRUE(*l.model.attn_bias);
  EXPECT_FALSE(*l.model.tie_embeddings);
  EXPECT_EQ(l.data, g.data);
  EXPECT_EQ(l.train, g.train);
  EXPECT_EQ(l.optim, g.optim);
}

}  // namespace
}  // namespace zt
