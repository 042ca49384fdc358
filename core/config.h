// The one config schema: YAML experiment files parsed into typed structs.
//
// Each struct lists its keys once, in visit(); that list drives parsing (types, ranges,
// unknown keys), dumping the resolved config, and `--set a.b=c` overrides. Adding a key is
// one member plus one line in visit().
#pragma once
#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zt {

// Numeric bounds of a key; open bounds exclude the limit itself.
struct Bounds {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_open = false, max_open = false;
};
inline Bounds at_least(double m) { return {m}; }
inline Bounds above(double m) { return {m, std::numeric_limits<double>::infinity(), true}; }
inline Bounds unit_interval_open_top() { return {0, 1, false, true}; }
inline Bounds between(double lo, double hi) { return {lo, hi}; }
// An enum key that takes only the values declared up to `last`: parse refuses the others and
// --help lists only these.
template <class E> Bounds enum_up_to(E last) { return {0, static_cast<double>(static_cast<int>(last))}; }
// Sizes are capped far above any real model so that every product of them (parameter and
// activation counts, bytes) fits an int64 and is checked against memory instead of overflowing.
inline constexpr double kMaxWidth = 1 << 20, kMaxCount = 1 << 24, kMaxSteps = 1e12;

enum class ModelFamily : uint8_t { gpt2, llama };
enum class TokenizerKind : uint8_t { char_level, byte, none, file };
enum class TokenFormat : uint8_t { automatic, llmc, nanogpt };
enum class OptimName : uint8_t { adamw, sgd };
enum class LrScheduleKind : uint8_t { constant, cosine, linear };
enum class LogLevel : uint8_t { debug, info, warn };
enum class CommBackend : uint8_t { automatic, mpi, gloo, single, nccl, staged };
enum class OnCorrupt : uint8_t { error, previous };
enum class ActivationCheckpointing : uint8_t { none, all, every_k };
enum class Precision : uint8_t { fp32, bf16, fp16 };
enum class RuntimeDevice : uint8_t { cpu, cuda };

std::string_view to_string(ModelFamily v);
std::string_view to_string(TokenizerKind v);
std::string_view to_string(TokenFormat v);
std::string_view to_string(OptimName v);
std::string_view to_string(LrScheduleKind v);
std::string_view to_string(LogLevel v);
std::string_view to_string(CommBackend v);
std::string_view to_string(OnCorrupt v);
std::string_view to_string(ActivationCheckpointing v);
std::string_view to_string(Precision v);
std::string_view to_string(RuntimeDevice v);

struct RunConfig {
  std::string name = "default";
  std::string out_dir = "runs";
  uint64_t seed = 1337;
  bool overwrite = false;  // start over in a run directory that holds another run's files
  template <class V> void visit(V& v) {
    v("name", name);
    v("out_dir", out_dir);
    v("seed", seed);
    v("overwrite", overwrite);
  }
  bool operator==(const RunConfig&) const = default;
};

// Mixture of Experts (llama family): the FFN of every every_n_layers-th block becomes
// n_experts SwiGLU experts of model.d_ff behind a softmax router, each token using its top_k.
struct MoeConfig {
  int64_t n_experts = 0;          // 0 = dense FFN (off)
  int64_t top_k = 2;
  int64_t n_shared_experts = 0;   // SwiGLU experts every token uses (one fused expert of n x d_ff)
  double aux_loss_coef = 0.1;     // load-balancing loss, per sequence, summed over MoE layers
  bool norm_topk_prob = true;     // renormalize the top-k weights to sum to 1
  int64_t every_n_layers = 1;     // blocks l with l % every_n_layers == 0 are MoE
  template <class V> void visit(V& v) {
    v("n_experts", n_experts, between(0, 4096));
    v("top_k", top_k, between(1, 4096));
    v("n_shared_experts", n_shared_experts, between(0, 64));
    v("aux_loss_coef", aux_loss_coef, at_least(0));
    v("norm_topk_prob", norm_topk_prob);
    v("every_n_layers", every_n_layers, between(1, 4096));
  }
  bool operator==(const MoeConfig&) const = default;
};

struct ModelConfig {
  ModelFamily family = ModelFamily::gpt2;
  int64_t n_layer = 6, n_head = 6;
  int64_t n_kv_head = 0;     // 0 = n_head
  int64_t d_model = 384;
  int64_t d_ff = 0;          // 0 = family default
  int64_t vocab_size = 0;    // 0 = from the tokenizer / data
  int64_t max_seq_len = 0;   // 0 = data.seq_len
  double norm_eps = 1e-5;
  double rope_theta = 10000;
  std::optional<bool> tie_embeddings;  // family default: gpt2 tied, llama untied
  std::optional<bool> attn_bias;       // family default: gpt2 true, llama false
  std::string init_from;               // .safetensors with Hugging Face names, or an HF model directory
  double init_std = 0.02;
  bool attn_gate = false;            // gated attention: sigmoid output gate per head and channel
  int64_t worker_interval = 0;       // WorkerTransformer: every k-th position is a worker; 0 = off
  int64_t worker_conv_width = 0;     // taps of the causal depthwise conv mixer; 0 = worker_interval
  MoeConfig moe;
  template <class V> void visit(V& v) {
    v("family", family);
    v("n_layer", n_layer, between(1, 4096));
    v("n_head", n_head, between(1, 4096));
    v("n_kv_head", n_kv_head, between(0, 4096));
    v("d_model", d_model, between(1, kMaxWidth));
    v("d_ff", d_ff, between(0, kMaxWidth));
    v("vocab_size", vocab_size, between(0, 2147483647));  // token ids are int32
    v("max_seq_len", max_seq_len, between(0, kMaxCount));
    v("norm_eps", norm_eps, above(0));
    v("rope_theta", rope_theta, above(0));
    v("tie_embeddings", tie_embeddings);
    v("attn_bias", attn_bias);
    v("init_from", init_from);
    v("init_std", init_std, above(0));
    v("attn_gate", attn_gate);
    v("worker_interval", worker_interval, at_least(0));
    v("worker_conv_width", worker_conv_width, at_least(0));
    v.section("moe", moe);
  }
  bool operator==(const ModelConfig&) const = default;
};

struct DataConfig {
  // One text file (tokenizer char|byte|PATH), or token files (tokenizer none): a file, a
  // directory of shards, a glob, or a YAML list of any of these (see core/data/token_shards.h).
  std::vector<std::string> train;
  std::vector<std::string> val;  // optional, of the same kind; else the last val_fraction of train
  // char, byte, none, or the path of a BPE tokenizer file (tokenizer.json, GPT-2 vocab.json
  // with merges.txt beside it, .tiktoken, or a directory holding one); see tokenizer_kind().
  std::string tokenizer = "char";
  TokenFormat format = TokenFormat::automatic;  // token files: auto (llm.c header, else nanoGPT), llmc, nanogpt
  int64_t seq_len = 256;
  bool shuffle = true;
  double val_fraction = 0.1;
  template <class V> void visit(V& v) {
    v("train", train);
    v("val", val);
    v("tokenizer", tokenizer);
    v("format", format);
    v("seq_len", seq_len, between(1, kMaxCount));
    v("shuffle", shuffle);
    v("val_fraction", val_fraction, unit_interval_open_top());
  }
  bool operator==(const DataConfig&) const = default;
  TokenizerKind tokenizer_kind() const {
    if (tokenizer == "char") return TokenizerKind::char_level;
    if (tokenizer == "byte") return TokenizerKind::byte;
    if (tokenizer == "none") return TokenizerKind::none;
    return TokenizerKind::file;
  }
};

struct TrainConfig {
  int64_t micro_batch = 8;
  int64_t grad_accum = 1;
  int64_t global_batch = 0;  // samples per step; 0 = micro_batch x grad_accum x world size
  int64_t steps = 1000;
  int64_t log_every = 10;
  int64_t eval_every = 0;  // 0 = never
  int64_t eval_batches = 20;
  template <class V> void visit(V& v) {
    v("micro_batch", micro_batch, between(1, kMaxCount));
    v("grad_accum", grad_accum, between(1, kMaxCount));
    v("global_batch", global_batch, between(0, kMaxSteps));
    v("steps", steps, between(1, kMaxSteps));
    v("log_every", log_every, at_least(1));
    v("eval_every", eval_every, at_least(0));
    v("eval_batches", eval_batches, at_least(1));
  }
  bool operator==(const TrainConfig&) const = default;
};

struct ScheduleConfig {
  LrScheduleKind kind = LrScheduleKind::cosine;
  int64_t warmup_steps = 0;
  double min_lr = 0;
  template <class V> void visit(V& v) {
    v("kind", kind);
    v("warmup_steps", warmup_steps, at_least(0));
    v("min_lr", min_lr, at_least(0));
  }
  bool operator==(const ScheduleConfig&) const = default;
};

struct OptimConfig {
  OptimName name = OptimName::adamw;
  double lr = 6e-4;
  std::array<double, 2> betas = {0.9, 0.95};
  double eps = 1e-8;
  double weight_decay = 0.1;
  double momentum = 0;
  double grad_clip = 1.0;  // 0 = off
  std::vector<std::string> no_decay = {"bias", "norm", "embedding"};
  ScheduleConfig schedule;
  template <class V> void visit(V& v) {
    v("name", name);
    v("lr", lr, above(0));
    v("betas", betas, unit_interval_open_top());
    v("eps", eps, above(0));
    v("weight_decay", weight_decay, at_least(0));
    v("momentum", momentum, unit_interval_open_top());
    v("grad_clip", grad_clip, at_least(0));
    v.choices("no_decay", no_decay, {"bias", "norm", "embedding"});
    v.section("schedule", schedule);
  }
  bool operator==(const OptimConfig&) const = default;
};

struct ParallelConfig {
  CommBackend backend = CommBackend::automatic;  // auto: by launcher and device (launch/trainer.cpp)
  int64_t zero_stage = 0;
  double bucket_mb = 25;  // stage 0: gradients all-reduced in buckets of about this size
  int64_t threads = 0;    // per rank; 0 = cores of the node / ranks on the node
  double timeout_s = 300;  // a collective waiting longer fails, naming the ranks it waited for
  template <class V> void visit(V& v) {
    v("backend", backend);
    v("zero_stage", zero_stage, Bounds{0, 3});
    v("bucket_mb", bucket_mb, at_least(0));
    v("threads", threads, between(0, 1024));
    v("timeout_s", timeout_s, Bounds{0, 1e6, true, false});
  }
  bool operator==(const ParallelConfig&) const = default;
};

// Where one rank trains: its parameters, gradients, optimizer state and activations.
struct RuntimeConfig {
  RuntimeDevice device = RuntimeDevice::cpu;  // cuda: the rank's GPU (launch/train_device.h)
  template <class V> void visit(V& v) { v("device", device); }
  bool operator==(const RuntimeConfig&) const = default;
};

struct CheckpointConfig {
  std::string dir;           // empty = RUN_DIR/checkpoints
  int64_t every = 0;         // steps between checkpoints; 0 = only when preempted
  int64_t keep_last = 2;     // complete checkpoints kept (older ones pruned)
  bool async = false;        // snapshot to host memory, write on a background thread
  std::string resume = "auto";  // auto: from `latest` if any; none; or a checkpoint directory
  OnCorrupt on_corrupt = OnCorrupt::error;  // previous: fall back to the newest intact one
  template <class V> void visit(V& v) {
    v("dir", dir);
    v("every", every, at_least(0));
    v("keep_last", keep_last, at_least(1));
    v("async", async);
    v("resume", resume);
    v("on_corrupt", on_corrupt);
  }
  bool operator==(const CheckpointConfig&) const = default;
};

struct PrecisionConfig {
  Precision compute = Precision::fp32;  // dtype of matmul weights and inputs
  Precision reduce = Precision::fp32;   // dtype gradients are reduced in
  std::string loss_scale = "dynamic";   // dynamic (fp16 only) or a fixed positive number
  double initial_scale = 65536;         // dynamic: starting scale
  int64_t growth_interval = 2000;       // dynamic: clean steps before the scale doubles
  template <class V> void visit(V& v) {
    v("compute", compute);
    v("reduce", reduce, enum_up_to(Precision::bf16));  // fp32 or bf16
    v("loss_scale", loss_scale);
    v("initial_scale", initial_scale, at_least(1));
    v("growth_interval", growth_interval, at_least(1));
  }
  bool operator==(const PrecisionConfig&) const = default;
};

struct MemoryConfig {
  // all: every block keeps only its input and recomputes its forward during backward;
  // every_k: blocks 0, k, 2k, ... do (k = checkpoint_every).
  ActivationCheckpointing activation_checkpointing = ActivationCheckpointing::none;
  int64_t checkpoint_every = 2;
  template <class V> void visit(V& v) {
    v("activation_checkpointing", activation_checkpointing);
    v("checkpoint_every", checkpoint_every, at_least(1));
  }
  bool operator==(const MemoryConfig&) const = default;
};

struct ProfileConfig {
  bool enabled = false;
  int64_t start_step = 3;    // first step recorded (1-based; earlier steps warm up buffers)
  int64_t steps = 3;         // steps recorded
  std::string dir;           // empty = RUN_DIR/trace
  double peak_gflops = 0;    // per rank, for MFU; 0 = measure this machine's sgemm rate
  template <class V> void visit(V& v) {
    v("enabled", enabled);
    v("start_step", start_step, at_least(1));
    v("steps", steps, at_least(1));
    v("dir", dir);
    v("peak_gflops", peak_gflops, at_least(0));
  }
  bool operator==(const ProfileConfig&) const = default;
};

struct LogConfig {
  bool all_ranks = false;
  LogLevel level = LogLevel::info;
  bool tensorboard = false;  // also write each metrics record as TensorBoard scalars (rank 0)
  template <class V> void visit(V& v) {
    v("all_ranks", all_ranks);
    v("level", level);
    v("tensorboard", tensorboard);
  }
  bool operator==(const LogConfig&) const = default;
};

struct Config {
  RunConfig run;
  ModelConfig model;
  DataConfig data;
  TrainConfig train;
  OptimConfig optim;
  ParallelConfig parallel;
  RuntimeConfig runtime;
  CheckpointConfig checkpoint;
  PrecisionConfig precision;
  MemoryConfig memory;
  ProfileConfig profile;
  LogConfig log;
  template <class V> void visit(V& v) {
    v.section("run", run);
    v.section("model", model);
    v.section("data", data);
    v.section("train", train);
    v.section("optim", optim);
    v.section("parallel", parallel);
    v.section("runtime", runtime);
    v.section("checkpoint", checkpoint);
    v.section("precision", precision);
    v.section("memory", memory);
    v.section("profile", profile);
    v.section("log", log);
  }
  bool operator==(const Config&) const = default;
};

// Parses, applies overrides ("a.b.c=value", value read as YAML), validates and resolves
// family defaults. Throws zt::Error naming the key, and the file and line or the --set
// that supplied it. Pure: never writes anything.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
Config parse_config(const std::string& yaml_text, const std::string& source_name,
                    const std::vector<std::string>& overrides = {});
// The resolved config as YAML, every key present; parse_config(dump_config(c)) == c.
std::string dump_config(const Config& config);
// Every leaf key path ("model.n_layer", ...), for help and suggestions.
std::vector<std::string> config_keys();

// What `zt train --help` shows of a key, read from a default-constructed Config.
struct ConfigKeyInfo {
  std::string path;           // "model.n_layer"
  std::string type;           // string, int, uint, float, bool, bool or null, enum, list, [float, float]
  std::string default_value;  // as YAML, as dump_config writes it
  std::string choices;        // enum values or list entries allowed, comma-separated; else empty
  std::string range;          // "[1, 4096]", "> 0", ">= 1"; empty when unbounded
};
std::vector<ConfigKeyInfo> describe_config_keys();  // schema order

}  // namespace zt
