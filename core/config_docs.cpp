#include "core/config_docs.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "core/config.h"

namespace zt {

namespace {

// One line per key of core/config.h; a test fails when a schema key is missing here or this
// table names a key the schema lacks.
constexpr std::pair<std::string_view, std::string_view> kDocs[] = {
    {"run.name", "name of the run: its directory is run.out_dir/run.name"},
    {"run.out_dir", "directory that holds run directories"},
    {"run.seed", "seed of every random draw (initialization, shuffling)"},
    {"run.overwrite", "start over in a run directory that holds another run's files"},

    {"model.family", "gpt2 (LayerNorm, GELU, learned positions) or llama (RMSNorm, SwiGLU, RoPE)"},
    {"model.n_layer", "transformer blocks"},
    {"model.n_head", "attention heads"},
    {"model.n_kv_head", "key/value heads (grouped-query attention); 0 = model.n_head"},
    {"model.d_model", "width of the residual stream"},
    {"model.d_ff", "hidden width of the MLP; 0 = family default (gpt2 4 x d_model, llama about 8/3 x d_model)"},
    {"model.vocab_size", "vocabulary size; 0 = the tokenizer's or the token file's"},
    {"model.max_seq_len", "longest sequence the model accepts; 0 = data.seq_len"},
    {"model.norm_eps", "epsilon of the normalization layers"},
    {"model.rope_theta", "RoPE base frequency (llama)"},
    {"model.tie_embeddings", "share the input embedding with the output head; null = family default (gpt2 tied, llama not)"},
    {"model.attn_bias", "q/k/v projection biases; null = family default (gpt2 true, llama false; true is Qwen2-style)"},
    {"model.init_from", ".safetensors file with Hugging Face names to start from instead of random weights"},
    {"model.init_std", "standard deviation of the random initialization"},
    {"model.attn_gate", "gated attention: a sigmoid output gate per head and channel"},
    {"model.worker_interval", "WorkerTransformer: every k-th position is a worker; 0 = off"},
    {"model.worker_conv_width", "taps of the WorkerTransformer's causal conv mixer; 0 = model.worker_interval"},
    {"model.moe.n_experts", "Mixture of Experts (llama): routed SwiGLU experts per MoE block; 0 = a dense FFN"},
    {"model.moe.top_k", "experts each token is routed to"},
    {"model.moe.n_shared_experts", "experts every token uses (one fused SwiGLU behind a sigmoid gate, Qwen2-MoE style)"},
    {"model.moe.aux_loss_coef", "weight of the per-sequence load-balancing loss added to the objective"},
    {"model.moe.norm_topk_prob", "renormalize the top-k router probabilities to sum to 1"},
    {"model.moe.every_n_layers", "blocks l with l % every_n_layers == 0 are MoE blocks"},

    {"data.train", "training text (tokenizer char, byte or a file), or token files (tokenizer none): a file, a "
                   "directory of *train*.bin shards, a glob or a list; shards are read in sorted order"},
    {"data.val", "validation data of the same kind (a directory gives its *val*.bin shards); empty = the last "
                 "data.val_fraction of data.train"},
    {"data.tokenizer", "char, byte, none (token files) or the path of a BPE tokenizer file"},
    {"data.format", "layout of token files: auto (llm.c header, else nanoGPT), llmc or nanogpt"},
    {"data.seq_len", "tokens per training sample"},
    {"data.shuffle", "shuffle the samples every epoch"},
    {"data.val_fraction", "share of data.train held out for validation when data.val is empty"},

    {"train.micro_batch", "samples per rank per forward/backward pass"},
    {"train.grad_accum", "micro-batches accumulated per step (used when train.global_batch is 0)"},
    {"train.global_batch", "samples per optimizer step over all ranks; 0 = micro_batch x grad_accum x world size"},
    {"train.steps", "optimizer steps to train"},
    {"train.log_every", "steps between progress lines and metrics records"},
    {"train.eval_every", "steps between validation evaluations; 0 = never"},
    {"train.eval_batches", "micro-batches per evaluation"},

    {"optim.name", "optimizer: adamw or sgd"},
    {"optim.lr", "peak learning rate"},
    {"optim.betas", "AdamW moment decay rates"},
    {"optim.eps", "AdamW epsilon"},
    {"optim.weight_decay", "decoupled weight decay"},
    {"optim.momentum", "SGD momentum; 0 = none"},
    {"optim.grad_clip", "clip the global gradient norm to this; 0 = off"},
    {"optim.no_decay", "parameter kinds without weight decay"},
    {"optim.schedule.kind", "learning-rate schedule after warmup"},
    {"optim.schedule.warmup_steps", "steps of linear warmup from 0 to optim.lr"},
    {"optim.schedule.min_lr", "learning rate the cosine and linear schedules end at"},

    {"parallel.backend", "communication: auto (CPU: mpi under mpirun, gloo under zt launch; GPU: nccl, or staged "
                         "without NCCL), mpi, gloo, single, nccl (GPU tensors; id handed out over MPI or the store) "
                         "or staged (GPU tensors copied through pinned host buffers to mpi/gloo)"},
    {"parallel.zero_stage", "ZeRO sharding: 0 none, 1 optimizer states, 2 and gradients, 3 and parameters"},
    {"parallel.bucket_mb", "stage 0: gradients are all-reduced in buckets of about this many MiB"},
    {"parallel.threads", "compute threads per rank; 0 = the node's cores divided by its ranks"},
    {"parallel.timeout_s", "a collective waiting longer fails, naming the ranks it waited for"},

    {"runtime.device", "where a rank trains (parameters, gradients, optimizer state, activations): cpu, or cuda "
                       "(cuda:LOCAL_RANK under NCCL; GPUs shared round-robin under parallel.backend: staged)"},

    {"checkpoint.dir", "where checkpoints go; empty = RUN_DIR/checkpoints"},
    {"checkpoint.every", "steps between checkpoints; 0 = only when preempted"},
    {"checkpoint.keep_last", "complete checkpoints kept (older ones pruned)"},
    {"checkpoint.async", "snapshot to host memory and write on a background thread"},
    {"checkpoint.resume", "auto (from `latest` if any), none, or a checkpoint directory"},
    {"checkpoint.on_corrupt", "a corrupt checkpoint: error, or previous (fall back to the newest intact one)"},

    {"precision.compute", "dtype of matmul weights and inputs"},
    {"precision.reduce", "dtype gradients are reduced in (fp32 or bf16)"},
    {"precision.loss_scale", "dynamic (fp16 only) or a fixed positive number"},
    {"precision.initial_scale", "dynamic loss scaling: starting scale"},
    {"precision.growth_interval", "dynamic loss scaling: clean steps before the scale doubles"},

    {"memory.activation_checkpointing", "recompute block forwards in backward: none, all, or every_k blocks"},
    {"memory.checkpoint_every", "every_k: blocks 0, k, 2k, ... are checkpointed (k = this)"},

    {"profile.enabled", "record a trace of a few steps and their MFU"},
    {"profile.start_step", "first step recorded (1-based; earlier steps warm up buffers)"},
    {"profile.steps", "steps recorded"},
    {"profile.dir", "where traces go; empty = RUN_DIR/trace"},
    {"profile.peak_gflops", "per-rank peak GFLOP/s for MFU; 0 = measure this machine's sgemm rate"},

    {"log.all_ranks", "every rank logs, each line prefixed with [rank r]; else rank 0 only"},
    {"log.level", "least severe messages shown"},
    {"log.tensorboard", "also write every logged step as TensorBoard scalars (events.out.tfevents.* in the run directory)"},
};

std::string section_of(const std::string& path) {
  const auto dot = path.find('.');
  return dot == std::string::npos ? "" : path.substr(0, dot);
}

}  // namespace

std::string_view config_key_doc(std::string_view path) {
  for (const auto& [key, doc] : kDocs)
    if (key == path) return doc;
  return {};
}

std::vector<std::string> documented_config_keys() {
  std::vector<std::string> keys;
  for (const auto& [key, doc] : kDocs) keys.emplace_back(key);
  return keys;
}

std::string config_reference() {
  const std::vector<ConfigKeyInfo> keys = describe_config_keys();
  auto type_of = [](const ConfigKeyInfo& k) {
    std::string choices;  // "a, b" -> "a|b"
    for (char c : k.choices)
      if (c != ' ') choices += c == ',' ? '|' : c;
    if (k.type == "enum") return choices;
    if (k.type == "list") return fmt::format("list of {}", choices);
    if (k.range.empty()) return k.type;
    return fmt::format("{}{}{}", k.type, k.range[0] == '[' || k.range[0] == '(' ? " in " : " ", k.range);
  };
  size_t key_w = 0, type_w = 0, value_w = 0;
  for (const auto& k : keys) {
    key_w = std::max(key_w, k.path.size());
    type_w = std::max(type_w, type_of(k).size());
    value_w = std::max(value_w, k.default_value.size());
  }
  std::string out = fmt::format("config keys (in CONFIG.yaml, or --set key=value):\n  {:<{}}  {:<{}}  {:<{}}  {}\n",
                                "key", key_w, "type", type_w, "default", value_w, "meaning");
  std::string section = "-";
  for (const auto& k : keys) {
    if (section_of(k.path) != section) {
      section = section_of(k.path);
      out += fmt::format("\n{}:\n", section);
    }
    out += fmt::format("  {:<{}}  {:<{}}  {:<{}}  {}\n", k.path, key_w, type_of(k), type_w, k.default_value, value_w,
                       config_key_doc(k.path));
  }
  return out;
}

}  // namespace zt
