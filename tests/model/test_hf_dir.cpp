// Hugging Face model directories in process: shard sizes and plans, config.json filling the
// model keys, sharded weights loading bitwise, and every refusal naming what it refuses.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/hf_config.h"
#include "core/rng.h"
#include "launch/train_setup.h"
#include "model/hf_dir.h"
#include "model/hf_io.h"
#include "tests/support/errors.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::error_of;
using testing::TempDir;

TEST(HfDir, ShardSizesParseLikeTransformers) {
  EXPECT_EQ(parse_shard_size("5GB"), 5000000000);
  EXPECT_EQ(parse_shard_size("500MB"), 500000000);
  EXPECT_EQ(parse_shard_size("2GiB"), int64_t{2} << 30);
  EXPECT_EQ(parse_shard_size("10kib"), 10240);
  EXPECT_EQ(parse_shard_size("3kB"), 3000);
  EXPECT_EQ(parse_shard_size("123"), 123);
  for (const char* bad : {"", "0", "-1", "1.5GB", "5XB", "GB", "5 GB", "99999999999999GB"})
    EXPECT_THAT(error_of([&] { parse_shard_size(bad); }), HasSubstr("--max-shard-size")) << bad;
}

TEST(HfDir, ShardPlanKeepsOrderAndGivesALargerTensorItsOwnShard) {
  using Plan = std::vector<std::vector<size_t>>;
  EXPECT_EQ(plan_shards({4, 4, 4, 10, 1}, 8), (Plan{{0, 1}, {2}, {3}, {4}}));
  EXPECT_EQ(plan_shards({1, 2, 3}, 100), (Plan{{0, 1, 2}}));
  EXPECT_EQ(plan_shards({9}, 8), (Plan{{0}}));
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}
void write_json(const fs::path& p, const nlohmann::json& j) { std::ofstream(p) << j.dump(2); }

const char* kData = "data:\n  train: data/tinyshakespeare.txt\n  seq_len: 4\n";

// Source models of each kind the export writes: GPT2LMHeadModel, LlamaForCausalLM (GQA,
// untied head, other norm_eps and rope_theta), Qwen2ForCausalLM (q/k/v biases, tied head),
// MixtralForCausalLM (MoE in every block) and Qwen2MoeForCausalLM (shared experts, top-k
// weights not renormalized, a dense middle block).
const char* kSources[] = {
    "model:\n  family: gpt2\n  n_layer: 2\n  n_head: 2\n  d_model: 8\n  d_ff: 12\n  vocab_size: 11\n"
    "  max_seq_len: 6\n",
    "model:\n  family: llama\n  n_layer: 2\n  n_head: 4\n  n_kv_head: 2\n  d_model: 16\n  d_ff: 24\n"
    "  vocab_size: 13\n  max_seq_len: 8\n  norm_eps: 1.0e-6\n  rope_theta: 500000\n",
    "model:\n  family: llama\n  n_layer: 1\n  n_head: 2\n  n_kv_head: 1\n  d_model: 8\n  d_ff: 16\n"
    "  vocab_size: 9\n  max_seq_len: 4\n  attn_bias: true\n  tie_embeddings: true\n",
    "model:\n  family: llama\n  n_layer: 2\n  n_head: 2\n  n_kv_head: 1\n  d_model: 8\n  d_ff: 12\n"
    "  vocab_size: 10\n  max_seq_len: 4\n  rope_theta: 1000000\n  moe:\n    n_experts: 4\n    top_k: 2\n"
    "    aux_loss_coef: 0.02\n",
    "model:\n  family: llama\n  n_layer: 3\n  n_head: 2\n  d_model: 8\n  d_ff: 6\n  vocab_size: 9\n"
    "  max_seq_len: 4\n  attn_bias: true\n  tie_embeddings: true\n  moe:\n    n_experts: 3\n    top_k: 2\n"
    "    n_shared_experts: 2\n    norm_topk_prob: false\n    every_n_layers: 2\n    aux_loss_coef: 0.001\n",
};

// The model `yaml` describes, exported to DIR with a shard limit small enough to shard it.
struct Exported {
  Config config;
  std::unique_ptr<LocalModel> model;
};
Exported export_source(const std::string& yaml, const fs::path& dir) {
  Exported e{parse_config(yaml + kData, "source.yaml"), nullptr};
  e.model = std::make_unique<LocalModel>(model_spec(e.config));
  // Weights of order one, so that every nonlinearity (GELU's cubic term, RoPE's rotation)
  // moves the logits; biases, which start at zero, nonzero so that a mix-up would show.
  for (Tensor& t : e.model->params)
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = 10 * t.data<float>()[i] + 0.05f * static_cast<float>(i % 7 - 3);
  write_hf_directory(e.model->model, dir.string(), hf_config_text(e.config.model), {}, 1024);
  return e;
}

constexpr int64_t kBatch = 2, kSeq = 4;

std::vector<int32_t> random_ids(int64_t vocab) {
  std::vector<int32_t> ids(kBatch * kSeq);
  Rng rng(5, 1);
  for (int32_t& id : ids) id = static_cast<int32_t>(rng.below(vocab));
  return ids;
}

// Logits (kBatch * kSeq rows of the vocabulary) for `ids`.
std::vector<float> logits(Transformer& model, const std::vector<int32_t>& ids) {
  Stream s;
  s.B = kBatch;
  s.T = kSeq;
  s.tokens = Tensor::empty({kBatch, kSeq}, DType::i32);
  std::copy(ids.begin(), ids.end(), s.tokens.data<int32_t>());
  model.forward(s);
  return {s.logits.data<float>(), s.logits.data<float>() + s.logits.numel()};
}

// init_from DIR with no model keys set: config.json fills all of them, and the sharded
// weights load bitwise into a model whose logits equal the source's.
TEST(HfDir, ShardedDirectoryFillsEveryModelKeyAndLoadsBitwise) {
  for (const char* source : kSources) {
    SCOPED_TRACE(source);
    TempDir tmp;
    const fs::path dir = tmp.path() / "hf";
    Exported src = export_source(source, dir);
    ASSERT_FALSE(fs::exists(dir / "model.safetensors"));
    const nlohmann::json index = read_json(dir / "model.safetensors.index.json");
    std::set<std::string> shards;
    for (const auto& [name, shard] : index["weight_map"].items()) shards.insert(shard.get<std::string>());
    ASSERT_GE(shards.size(), 2u);

    Config dst = parse_config("model:\n  init_from: " + dir.string() + "\n" + kData, "dst.yaml");
    ModelConfig filled = dst.model;
    filled.init_from.clear();
    EXPECT_EQ(filled, src.config.model);
    dst.run.seed = 99;  // another init, overwritten by the load
    LocalModel b(model_spec(dst));
    load_hf_safetensors(b.model, dir.string());
    ASSERT_EQ(b.params.size(), src.model->params.size());
    for (size_t u = 0; u < b.params.size(); ++u)
      EXPECT_EQ(0, std::memcmp(b.params[u].raw(), src.model->params[u].raw(), b.params[u].nbytes())) << u;
    const std::vector<int32_t> ids = random_ids(dst.model.vocab_size);
    EXPECT_EQ(logits(b.model, ids), logits(src.model->model, ids));
  }
}

// The exported directory means to transformers what the model computes: a numpy forward
// pass that follows transformers' modeling code, reading only the directory, gives the
// model's logits (tests/tools/hf_dir_check.py).
TEST(HfDir, ExportedDirectoryLogitsEqualAForwardPassFollowingTransformers) {
  const std::string python = ZT_PYTHON;
  ASSERT_TRUE(fs::exists(python)) << "Python with safetensors and numpy not found at " << python
                                  << ": run scripts/install-deps.sh, or configure with -DZT_PYTHON=...";
  for (const char* source : kSources) {
    SCOPED_TRACE(source);
    TempDir tmp;
    const fs::path dir = tmp.path() / "hf";
    Exported src = export_source(source, dir);
    const int64_t V = src.config.model.vocab_size;
    const std::vector<int32_t> ids = random_ids(V);
    const std::vector<float> ours = logits(src.model->model, ids);
    nlohmann::json j;
    for (int64_t b = 0; b < kBatch; ++b) {
      j["tokens"].push_back(std::vector<int32_t>(ids.begin() + b * kSeq, ids.begin() + (b + 1) * kSeq));
      nlohmann::json rows;
      for (int64_t t = 0; t < kSeq; ++t) {
        const float* row = ours.data() + (b * kSeq + t) * V;
        rows.push_back(std::vector<float>(row, row + V));
      }
      j["logits"].push_back(rows);
    }
    write_json(tmp.path() / "logits.json", j);
    auto r = testing::run_command("'" + python + "' tests/tools/hf_dir_check.py '" + dir.string() + "' --logits '" +
                                  (tmp.path() / "logits.json").string() + "'");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const nlohmann::json summary = nlohmann::json::parse(r.output);
    EXPECT_LT(summary["logits_max_rel_diff"].get<double>(), 1e-5) << summary.dump();
  }
}

// A dumped config names every key: it parses after the directory is gone (tools reading a
// finished run), while a config that relied on config.json is refused naming the directory.
TEST(HfDir, AMissingDirectoryIsAnErrorOnlyWhenItWasToFillKeys) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "hf";
  export_source(kSources[1], dir);
  const std::string yaml = "model:\n  init_from: " + dir.string() + "\n" + kData;
  const std::string dumped = dump_config(parse_config(yaml, "cfg.yaml"));
  fs::remove_all(dir);
  EXPECT_EQ(parse_config(dumped, "config.yaml").model.n_kv_head, 2);
  EXPECT_THAT(error_of([&] { parse_config(yaml, "cfg.yaml"); }),
              AllOf(HasSubstr("cfg.yaml:2"), HasSubstr("model.init_from"), HasSubstr(dir.string() + " not found")));
}

TEST(HfDir, AKeyThatDisagreesWithConfigJsonNamesBothValuesAndSources) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "hf";
  export_source(kSources[1], dir);
  const std::string init = "model:\n  init_from: " + dir.string() + "\n";
  // Agreeing keys are fine.
  EXPECT_EQ(parse_config(init + "  n_layer: 2\n  family: llama\n" + kData, "cfg.yaml").model.d_ff, 24);
  EXPECT_THAT(error_of([&] { parse_config(init + "  n_layer: 3\n" + kData, "cfg.yaml"); }),
              HasSubstr("model.n_layer: cfg.yaml:3 says 3, " + (dir / "config.json").string() +
                        " (num_hidden_layers) says 2"));
  EXPECT_THAT(error_of([&] { parse_config(init + kData, "cfg.yaml", {"model.rope_theta=10000"}); }),
              HasSubstr("model.rope_theta: --set model.rope_theta says 10000, " + (dir / "config.json").string() +
                        " (rope_theta) says 500000"));
  EXPECT_THAT(error_of([&] { parse_config(init + "  family: gpt2\n" + kData, "cfg.yaml"); }),
              AllOf(HasSubstr("model.family: cfg.yaml:3 says gpt2"), HasSubstr("(model_type) says llama")));
  EXPECT_THAT(error_of([&] { parse_config(init + "  tie_embeddings: true\n" + kData, "cfg.yaml"); }),
              HasSubstr("(tie_word_embeddings) says false"));
  EXPECT_THAT(error_of([&] { parse_config(init + "  attn_gate: true\n" + kData, "cfg.yaml"); }),
              AllOf(HasSubstr("cfg.yaml:3"), HasSubstr("model.attn_gate")));
}

// Each config.json feature the model keys cannot describe is refused naming its field.
TEST(HfDir, UnsupportedConfigJsonFieldsAreRefusedByName) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "hf";
  export_source(kSources[1], dir);
  const nlohmann::json original = read_json(dir / "config.json");
  auto err = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = original;
    edit(j);
    write_json(dir / "config.json", j);
    return error_of([&] { parse_config("model:\n  init_from: " + dir.string() + "\n" + kData, "cfg.yaml"); });
  };
  EXPECT_THAT(err([](auto& j) { j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8}}; }),
              AllOf(HasSubstr("config.json"), HasSubstr("rope_scaling")));
  EXPECT_EQ(err([](auto& j) { j["rope_scaling"] = {{"rope_type", "default"}}; }), "(no error)");
  EXPECT_THAT(err([](auto& j) { j["rope_scaling"] = {{"rope_type", 5}}; }), HasSubstr("rope_type must be a string"));
  EXPECT_THAT(err([](auto& j) { j["hidden_act"] = "gelu"; }), HasSubstr("hidden_act \"gelu\" is not supported"));
  EXPECT_THAT(err([](auto& j) { j["attention_bias"] = true; }), HasSubstr("attention_bias true is not supported"));
  EXPECT_THAT(err([](auto& j) { j["mlp_bias"] = true; }), HasSubstr("mlp_bias"));
  EXPECT_THAT(err([](auto& j) { j["head_dim"] = 8; }), HasSubstr("head_dim"));
  EXPECT_THAT(err([](auto& j) { j["model_type"] = "bert"; }), HasSubstr("model_type 'bert' is not supported"));
  EXPECT_THAT(err([](auto& j) { j["architectures"] = {"LlamaForSequenceClassification"}; }),
              HasSubstr("architectures [\"LlamaForSequenceClassification\"] is not supported"));
  EXPECT_THAT(err([](auto& j) { j.erase("num_hidden_layers"); }), HasSubstr("num_hidden_layers is missing"));
  EXPECT_THAT(err([](auto& j) { j["num_hidden_layers"] = 2.5; }), HasSubstr("num_hidden_layers is 2.5"));
  EXPECT_THAT(err([](auto& j) { j["num_hidden_layers"] = 100000; }), HasSubstr("model.n_layer's limit"));
  // Mistral: a window narrower than the context is sliding-window attention; as wide, it is not.
  auto mistral = [](int64_t window) {
    return [=](nlohmann::json& j) {
      j["model_type"] = "mistral";
      j["architectures"] = {"MistralForCausalLM"};
      j.erase("attention_bias");
      j["sliding_window"] = window;
    };
  };
  EXPECT_THAT(err(mistral(4)), HasSubstr("sliding_window 4 is not supported"));
  EXPECT_EQ(err(mistral(8)), "(no error)");
  EXPECT_THAT(err([](auto& j) {
                j["model_type"] = "qwen2";
                j["architectures"] = {"Qwen2ForCausalLM"};
                j["use_sliding_window"] = true;
                j["sliding_window"] = 4;
              }),
              HasSubstr("sliding_window"));
  // A cross-field check then points at the config.json field that set the value.
  EXPECT_THAT(err([](auto& j) { j["num_key_value_heads"] = 3; }),
              AllOf(HasSubstr("config.json (num_key_value_heads)"), HasSubstr("must divide model.n_head")));
  fs::remove(dir / "config.json");
  EXPECT_THAT(error_of([&] { parse_config("model:\n  init_from: " + dir.string() + "\n" + kData, "cfg.yaml"); }),
              HasSubstr("holds no config.json"));
}

// Mixtral and Qwen2-MoE: the model.moe keys from config.json (Qwen2-MoE's dense blocks from
// mlp_only_layers or decoder_sparse_step, Mixtral's defaults where fields are left out), and
// what the keys cannot describe refused by its field.
TEST(HfDir, MoeConfigJsonFillsTheMoeKeysAndRefusesWhatTheyCannotDescribe) {
  TempDir tmp;
  const fs::path mixtral = tmp.path() / "mixtral", qwen = tmp.path() / "qwen2_moe";
  export_source(kSources[3], mixtral);
  export_source(kSources[4], qwen);
  auto parse = [&](const fs::path& dir, const std::string& extra = "") {
    return parse_config("model:\n  init_from: " + dir.string() + "\n" + extra + kData, "cfg.yaml");
  };
  auto with = [&](const fs::path& dir, const std::function<void(nlohmann::json&)>& edit) {
    const nlohmann::json original = read_json(dir / "config.json");
    nlohmann::json j = original;
    edit(j);
    write_json(dir / "config.json", j);
    std::string e = error_of([&] { parse(dir); });
    write_json(dir / "config.json", original);
    return e;
  };
  EXPECT_EQ(read_json(qwen / "config.json")["mlp_only_layers"], nlohmann::json::array({1}));
  // Fields left out take transformers' defaults: Mixtral's rms_norm_eps 1e-5 and rope_theta 1e6.
  nlohmann::json j = read_json(mixtral / "config.json");
  j.erase("rms_norm_eps");
  j.erase("rope_theta");
  j.erase("router_aux_loss_coef");
  write_json(mixtral / "config.json", j);
  Config c = parse(mixtral);
  EXPECT_EQ(c.model.norm_eps, 1e-5);
  EXPECT_EQ(c.model.rope_theta, 1e6);
  EXPECT_EQ(c.model.moe.aux_loss_coef, MoeConfig().aux_loss_coef);
  EXPECT_EQ(c.model.moe.n_experts, 4);
  // The input's aux_loss_coef wins (a training choice); an architecture key must agree.
  EXPECT_EQ(parse(qwen, "  moe:\n    aux_loss_coef: 0.5\n").model.moe.aux_loss_coef, 0.5);
  EXPECT_THAT(error_of([&] { parse(qwen, "  moe:\n    top_k: 1\n"); }),
              HasSubstr("model.moe.top_k: cfg.yaml:4 says 1, " + (qwen / "config.json").string() +
                        " (num_experts_per_tok) says 2"));
  // Qwen2-MoE's decoder_sparse_step counts from block 1: step 2 makes blocks 1, 3, ... MoE,
  // which no every_n_layers gives (ours start at block 0).
  EXPECT_THAT(with(qwen, [](auto& j) { j["mlp_only_layers"] = nlohmann::json::array(); j["decoder_sparse_step"] = 2; }),
              HasSubstr("decoder_sparse_step 2 is not supported"));
  EXPECT_THAT(with(qwen, [](auto& j) { j["mlp_only_layers"] = {0}; }), HasSubstr("mlp_only_layers [0] is not supported"));
  EXPECT_THAT(with(qwen, [](auto& j) { j["mlp_only_layers"] = {7}; }), HasSubstr("below num_hidden_layers 3"));
  EXPECT_THAT(with(qwen, [](auto& j) { j["intermediate_size"] = 20; }), HasSubstr("intermediate_size 20 is not supported"));
  EXPECT_THAT(with(qwen, [](auto& j) { j["shared_expert_intermediate_size"] = 7; }),
              HasSubstr("shared_expert_intermediate_size 7 is not supported"));
  EXPECT_THAT(with(qwen, [](auto& j) { j["shared_expert_intermediate_size"] = 0; }),
              HasSubstr("shared_expert_intermediate_size"));
  EXPECT_THAT(with(mixtral, [](auto& j) { j["router_jitter_noise"] = 0.1; }), HasSubstr("router_jitter_noise 0.1"));
  EXPECT_THAT(with(mixtral, [](auto& j) { j.erase("num_local_experts"); }), HasSubstr("num_local_experts is missing"));
  EXPECT_THAT(with(mixtral, [](auto& j) { j["num_local_experts"] = 5000; }), HasSubstr("model.moe.n_experts's limit"));
  // Every block MoE with every_n_layers 1: mlp_only_layers empty; only block 0 MoE: period n_layer.
  EXPECT_EQ(with(qwen, [](auto& j) { j["mlp_only_layers"] = {1, 2}; }), "(no error)");
}

TEST(HfDir, Gpt2ConfigJsonDefaultsAndRefusals) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "hf";
  export_source(kSources[0], dir);
  nlohmann::json j = read_json(dir / "config.json");
  j["n_inner"] = nullptr;  // transformers: 4 * n_embd
  j.erase("tie_word_embeddings");
  write_json(dir / "config.json", j);
  const std::string yaml = "model:\n  init_from: " + dir.string() + "\n" + kData;
  const Config c = parse_config(yaml, "cfg.yaml");
  EXPECT_EQ(c.model.d_ff, 32);
  EXPECT_EQ(c.model.tie_embeddings, true);
  EXPECT_EQ(c.model.family, ModelFamily::gpt2);
  j["activation_function"] = "relu";
  write_json(dir / "config.json", j);
  EXPECT_THAT(error_of([&] { parse_config(yaml, "cfg.yaml"); }), HasSubstr("activation_function \"relu\" is not supported"));
}

TEST(HfDir, AMissingOrMismatchedShardIsNamed) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "hf";
  Exported src = export_source(kSources[1], dir);
  LocalModel target(model_spec(src.config));
  nlohmann::json index = read_json(dir / "model.safetensors.index.json");
  const std::string shard = index["weight_map"]["lm_head.weight"];
  auto err = [&] { return error_of([&] { load_hf_safetensors(target.model, dir.string()); }); };

  fs::rename(dir / shard, tmp.path() / "moved");
  EXPECT_THAT(err(), AllOf(HasSubstr("shard " + shard + " not found"), HasSubstr(dir.string())));
  fs::rename(tmp.path() / "moved", dir / shard);
  EXPECT_EQ(err(), "(no error)");

  const std::string other = index["weight_map"]["model.embed_tokens.weight"];
  ASSERT_NE(other, shard);
  nlohmann::json moved = index;
  moved["weight_map"]["lm_head.weight"] = other;
  write_json(dir / "model.safetensors.index.json", moved);
  EXPECT_THAT(err(), HasSubstr("tensor 'lm_head.weight' is not in " + other));
  nlohmann::json dropped = index;
  dropped["weight_map"].erase("lm_head.weight");
  write_json(dir / "model.safetensors.index.json", dropped);
  EXPECT_THAT(err(), HasSubstr("holds tensor 'lm_head.weight', which model.safetensors.index.json does not list"));
  nlohmann::json escaping = index;
  escaping["weight_map"]["lm_head.weight"] = "../" + shard;
  write_json(dir / "model.safetensors.index.json", escaping);
  EXPECT_THAT(err(), HasSubstr("expected a file in this directory"));
  fs::remove(dir / "model.safetensors.index.json");
  EXPECT_THAT(err(), HasSubstr("no model.safetensors or model.safetensors.index.json"));
}

TEST(HfDir, ExportRefusesWhatTransformersCannotExpressAndLeavesNothing) {
  Config c = parse_config(std::string(kSources[0]) + "  attn_gate: true\n" + kData, "cfg.yaml");
  EXPECT_THAT(error_of([&] { hf_config_text(c.model); }), HasSubstr("model.attn_gate"));
  c = parse_config(std::string(kSources[1]) + "  worker_interval: 2\n" + kData, "cfg.yaml");
  EXPECT_THAT(error_of([&] { hf_config_text(c.model); }), HasSubstr("model.worker_interval"));
  // MoE without shared experts is written as Mixtral, with them as Qwen2-MoE: what either
  // cannot describe is refused naming the key.
  for (auto [extra, key] : {std::pair{"  attn_bias: true\n", "model.attn_bias: Mixtral"},
                            std::pair{"  moe:\n    n_experts: 4\n    norm_topk_prob: false\n", "model.moe.norm_topk_prob"},
                            std::pair{"  moe:\n    n_experts: 4\n    every_n_layers: 2\n", "model.moe.every_n_layers"}}) {
    const std::string base = std::string(extra).starts_with("  moe") ? std::string(kSources[1]) : std::string(kSources[3]);
    c = parse_config(base + extra + kData, "cfg.yaml");
    EXPECT_THAT(error_of([&] { hf_config_text(c.model); }), HasSubstr(key)) << extra;
  }
  c = parse_config(std::string(kSources[4]) + kData, "cfg.yaml", {"model.attn_bias=false"});
  EXPECT_THAT(error_of([&] { hf_config_text(c.model); }), HasSubstr("model.attn_bias: an MoE model with shared experts"));

  TempDir tmp;
  c = parse_config(std::string(kSources[0]) + kData, "cfg.yaml");
  LocalModel m(model_spec(c));
  const std::string config_json = hf_config_text(c.model);
  // A failure halfway (a tokenizer file to copy is missing) removes the temporary directory
  // and the parents it created.
  EXPECT_THAT(error_of([&] {
                write_hf_directory(m.model, (tmp.path() / "new/parents/out").string(), config_json,
                                   {{(tmp.path() / "nope.json").string(), "tokenizer.json"}}, 1 << 20);
              }),
              HasSubstr("nope.json"));
  EXPECT_TRUE(fs::is_empty(tmp.path()));
  fs::create_directory(tmp.path() / "full");
  std::ofstream(tmp.path() / "full" / "keep.txt") << "x";
  EXPECT_THAT(error_of([&] { write_hf_directory(m.model, (tmp.path() / "full/").string(), config_json, {}, 1 << 20); }),
              HasSubstr("not empty"));
  // An empty directory is filled; one file when the model fits the limit.
  fs::create_directory(tmp.path() / "empty");
  write_hf_directory(m.model, (tmp.path() / "empty/").string(), config_json, {}, 1 << 20);
  EXPECT_TRUE(fs::exists(tmp.path() / "empty" / "model.safetensors"));
  EXPECT_FALSE(fs::exists(tmp.path() / "empty" / "model.safetensors.index.json"));
  EXPECT_EQ(read_json(tmp.path() / "empty" / "config.json")["n_inner"], 12);
  write_hf_directory(m.model, (tmp.path() / "made/for/it/").string(), config_json, {}, 1 << 20);
  EXPECT_TRUE(fs::exists(tmp.path() / "made" / "for" / "it" / "model.safetensors"));
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(tmp.path())) ++entries;
  EXPECT_EQ(entries, 3u);  // full, empty, made: no temporary left
}

}  // namespace
}  // namespace zt
