#include "core/hf_config.h"

#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace fs = std::filesystem;

namespace zt {

namespace {

using json = nlohmann::json;

// model_type and the architecture class each family is saved as.
struct HfArch {
  const char* model_type;
  const char* architecture;
  ModelFamily family;
};
constexpr HfArch kArchs[] = {{"gpt2", "GPT2LMHeadModel", ModelFamily::gpt2},
                             {"llama", "LlamaForCausalLM", ModelFamily::llama},
                             {"mistral", "MistralForCausalLM", ModelFamily::llama},
                             {"qwen2", "Qwen2ForCausalLM", ModelFamily::llama},
                             {"mixtral", "MixtralForCausalLM", ModelFamily::llama},
                             {"qwen2_moe", "Qwen2MoeForCausalLM", ModelFamily::llama}};

const HfArch& arch_named(std::string_view model_type) {
  for (const HfArch& a : kArchs)
    if (model_type == a.model_type) return a;
  fail("no Hugging Face architecture for model_type {}", model_type);
}
bool is(const HfArch& a, std::string_view model_type) { return model_type == a.model_type; }
bool is_moe(const HfArch& a) { return is(a, "mixtral") || is(a, "qwen2_moe"); }

std::string arch_list(const char* HfArch::*field) {
  std::string s;
  for (const HfArch& a : kArchs) s += (s.empty() ? "" : ", ") + std::string(a.*field);
  return s;
}

// A model key's bounds ("n_layer", "moe.n_experts"), read from the schema (ModelConfig::visit)
// so that both stay one list.
struct BoundsOf {
  std::string key;
  Bounds bounds;
  template <class T> void operator()(const char* k, T&, Bounds b = {}) {
    if (key == k) bounds = b;
  }
  template <class S> void section(const char* k, S& s) {
    const std::string prefix = std::string(k) + ".";
    if (!key.starts_with(prefix)) return;
    BoundsOf sub{key.substr(prefix.size()), {}};
    s.visit(sub);
    bounds = sub.bounds;
  }
};

// Reads fields of one config.json; every error names the file and the field.
class HfJson {
 public:
  HfJson(std::string path, json j) : path_(std::move(path)), j_(std::move(j)) {}
  const std::string& path() const { return path_; }
  bool has(const char* f) const { return j_.contains(f) && !j_[f].is_null(); }
  const json& at(const char* f) const { return j_.at(f); }
  std::string from(const std::string& field) const { return fmt::format("{} ({})", path_, field); }

  // A positive integer; `model_key` bounds it like the YAML key.
  int64_t count(const char* f, const char* model_key) const {
    if (!has(f)) fail("{}: {} is missing (needed for model.{})", path_, f, model_key);
    const json& v = j_[f];
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX) || v.get<int64_t>() <= 0)
      fail("{}: {} is {}, expected a positive integer", path_, f, v.dump());
    BoundsOf b{model_key, {}};
    ModelConfig().visit(b);
    const auto x = v.get<int64_t>();
    if (static_cast<double>(x) > b.bounds.max)
      fail("{}: {} is {}, above model.{}'s limit {}", path_, f, x, model_key, b.bounds.max);
    return x;
  }
  double number(const char* f, double fallback) const {
    if (!has(f)) return fallback;
    const json& v = j_[f];
    if (!v.is_number() || !(v.get<double>() > 0)) fail("{}: {} is {}, expected a positive number", path_, f, v.dump());
    return v.get<double>();
  }
  bool flag(const char* f, bool fallback) const {
    if (!has(f)) return fallback;
    if (!j_[f].is_boolean()) fail("{}: {} is {}, expected true or false", path_, f, j_[f].dump());
    return j_[f].get<bool>();
  }
  std::string text(const char* f, const std::string& fallback) const {
    if (!has(f)) return fallback;
    if (!j_[f].is_string()) fail("{}: {} is {}, expected a string", path_, f, j_[f].dump());
    return j_[f].get<std::string>();
  }
  // A feature the model keys cannot describe, set to something other than what they mean.
  [[noreturn]] void unsupported(const char* f, const std::string& why) const {
    fail("{}: {} {} is not supported: {}", path_, f, j_.contains(f) ? j_.at(f).dump() : "null", why);
  }

 private:
  std::string path_;
  json j_;
};

// Never throws for a path it cannot stat (a name too long, a loop): the config parser's
// errors are zt::Error only.
bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// A string field of an object, or `fallback` when absent; another type is refused by name.
std::string text_in(const HfJson& h, const char* f, const json& obj, const char* key, const std::string& fallback) {
  if (!obj.contains(key)) return fallback;
  if (!obj[key].is_string()) h.unsupported(f, fmt::format("{} must be a string", key));
  return obj[key].get<std::string>();
}

HfJson read_config_json(const std::string& dir) {
  const std::string path = (fs::path(dir) / "config.json").string();
  if (!is_file(path))
    fail("model.init_from: {} holds no config.json (a Hugging Face model directory has config.json and "
         "model.safetensors or model.safetensors.index.json)", dir);
  json j;
  try {
    std::ifstream in(path);
    j = json::parse(in);
  } catch (const std::exception& e) {
    fail("{}: not valid JSON: {}", path, e.what());
  }
  if (!j.is_object()) fail("{}: expected a JSON object", path);
  return HfJson(path, std::move(j));
}

// model_type, checked against architectures when both are given.
const HfArch& arch_of(const HfJson& h) {
  const HfArch* by_type = nullptr;
  if (h.has("model_type")) {
    const std::string t = h.text("model_type", "");
    for (const HfArch& a : kArchs)
      if (t == a.model_type) by_type = &a;
    if (!by_type) fail("{}: model_type '{}' is not supported (supported: {})", h.path(), t, arch_list(&HfArch::model_type));
  }
  if (h.has("architectures")) {
    const json& list = h.at("architectures");
    if (!list.is_array() || list.size() != 1 || !list[0].is_string())
      fail("{}: architectures is {}, expected one class name ({})", h.path(), list.dump(), arch_list(&HfArch::architecture));
    const std::string name = list[0].get<std::string>();
    const HfArch* by_name = nullptr;
    for (const HfArch& a : kArchs)
      if (name == a.architecture) by_name = &a;
    if (!by_name) fail("{}: architectures {} is not supported (supported: {})", h.path(), list.dump(), arch_list(&HfArch::architecture));
    if (by_type && by_type != by_name)
      fail("{}: architectures {} does not match model_type '{}'", h.path(), list.dump(), by_type->model_type);
    return *by_name;
  }
  if (!by_type) fail("{}: neither model_type nor architectures says which model this is", h.path());
  return *by_type;
}

std::string show(int64_t v) { return std::to_string(v); }
std::string show(double v) { return fmt::format("{}", v); }
std::string show(bool v) { return v ? "true" : "false"; }
std::string show(const std::optional<bool>& v) { return v ? show(*v) : "null"; }
std::string show(ModelFamily v) { return std::string(to_string(v)); }

// A key is unset when the input did not name it, or gave the value that means "derive it"
// (0 for n_kv_head, d_ff, vocab_size, max_seq_len; null for tie_embeddings, attn_bias).
bool derived(int64_t v) { return v == 0; }
bool derived(const std::optional<bool>& v) { return !v; }
template <class T> bool derived(const T&) { return false; }

bool same(double a, double b) { return a == b || std::abs(a - b) <= 1e-12 * std::max(std::abs(a), std::abs(b)); }
bool same(const std::optional<bool>& a, bool b) { return a && *a == b; }
template <class T, class U> bool same(const T& a, const U& b) { return a == b; }

class Filler {
 public:
  Filler(const HfJson& h, const KeySource& set_at) : h_(h), set_at_(set_at) {}

  // model.KEY takes `value` (read from config.json field `field`) unless the input set it,
  // in which case the two must agree.
  template <class T, class U> void operator()(const char* key, T& slot, const U& value, const std::string& field) {
    const std::string path = std::string("model.") + key;
    if (auto at = set_at_(path); at && !derived(slot)) {
      if (!same(slot, value))
        fail("{}: {} says {}, {} says {}", path, *at, show(slot), h_.from(field), show(value));
      return;
    }
    slot = value;
    filled_[path] = h_.from(field);
  }
  std::map<std::string, std::string>& filled() { return filled_; }

 private:
  const HfJson& h_;
  const KeySource& set_at_;
  std::map<std::string, std::string> filled_;
};

void fill_gpt2(ModelConfig& m, const HfJson& h, Filler& fill) {
  const std::string act = h.text("activation_function", "gelu_new");
  if (act != "gelu_new" && act != "gelu_pytorch_tanh")
    h.unsupported("activation_function", "the gpt2 family uses GELU's tanh approximation (gelu_new)");
  if (!h.flag("scale_attn_weights", true)) h.unsupported("scale_attn_weights", "attention scores are always scaled by 1/sqrt(head_dim)");
  if (h.flag("scale_attn_by_inverse_layer_idx", false))
    h.unsupported("scale_attn_by_inverse_layer_idx", "attention scores are not scaled by layer");
  if (h.flag("add_cross_attention", false)) h.unsupported("add_cross_attention", "a decoder-only model has no cross-attention");
  const int64_t d = h.count("n_embd", "d_model");
  fill("d_model", m.d_model, d, "n_embd");
  fill("n_layer", m.n_layer, h.count("n_layer", "n_layer"), "n_layer");
  const int64_t heads = h.count("n_head", "n_head");
  fill("n_head", m.n_head, heads, "n_head");
  fill("n_kv_head", m.n_kv_head, heads, "n_head");
  if (h.has("n_inner"))
    fill("d_ff", m.d_ff, h.count("n_inner", "d_ff"), "n_inner");
  else
    fill("d_ff", m.d_ff, 4 * d, "n_inner null: 4 * n_embd");
  fill("max_seq_len", m.max_seq_len, h.count("n_positions", "max_seq_len"), "n_positions");
  fill("norm_eps", m.norm_eps, h.number("layer_norm_epsilon", 1e-5), "layer_norm_epsilon");
  fill("tie_embeddings", m.tie_embeddings, h.flag("tie_word_embeddings", true), "tie_word_embeddings");
  fill("attn_bias", m.attn_bias, true, "gpt2: every linear has a bias");
}

void check_rope(const HfJson& h) {
  if (h.has("rope_scaling")) {
    const json& r = h.at("rope_scaling");
    const std::string type = r.is_object() ? text_in(h, "rope_scaling", r, "rope_type", text_in(h, "rope_scaling", r, "type", ""))
                                           : "";
    if (type != "default") h.unsupported("rope_scaling", "RoPE is applied unscaled (rope_theta only)");
  }
  if (h.has("rope_parameters")) {
    const json& r = h.at("rope_parameters");
    if (!r.is_object() || text_in(h, "rope_parameters", r, "rope_type", "default") != "default")
      h.unsupported("rope_parameters", "RoPE is applied unscaled (rope_theta only)");
  }
  if (h.has("partial_rotary_factor") && h.number("partial_rotary_factor", 1) != 1)
    h.unsupported("partial_rotary_factor", "RoPE rotates the whole head");
}

void fill_llama(ModelConfig& m, const HfJson& h, const HfArch& arch, Filler& fill) {
  if (h.text("hidden_act", "silu") != "silu") h.unsupported("hidden_act", "the llama family's MLP is SwiGLU (silu)");
  if (h.flag("mlp_bias", false)) h.unsupported("mlp_bias", "the llama family's MLP has no biases");
  check_rope(h);
  const bool mixtral = is(arch, "mixtral"), qwen2_moe = is(arch, "qwen2_moe");
  const int64_t d = h.count("hidden_size", "d_model"), heads = h.count("num_attention_heads", "n_head");
  const int64_t max_pos = h.count("max_position_embeddings", "max_seq_len");
  if (h.has("head_dim") && d % heads == 0 && h.count("head_dim", "d_model") != d / heads)
    h.unsupported("head_dim", fmt::format("heads are hidden_size / num_attention_heads = {} wide", d / heads));
  // A window narrower than the context changes attention; one as wide is full attention.
  const bool window_on = is(arch, "qwen2") || qwen2_moe ? h.flag("use_sliding_window", false) : h.has("sliding_window");
  if (window_on && h.has("sliding_window") && h.count("sliding_window", "max_seq_len") < max_pos)
    h.unsupported("sliding_window", fmt::format("attention is full-context (max_position_embeddings {})", max_pos));
  bool bias = false;
  std::string bias_from = std::string(arch.model_type) + ": no attention biases";
  if (is(arch, "qwen2") || qwen2_moe) {
    bias = true;
    bias_from = std::string(arch.model_type) + ": q/k/v biases";
  } else if (is(arch, "llama")) {
    if (h.flag("attention_bias", false))
      h.unsupported("attention_bias", "Llama's attention_bias also gives o_proj a bias; the llama family has q/k/v "
                                      "biases only (Qwen2's layout: model_type qwen2)");
    bias_from = "attention_bias";
  }
  fill("d_model", m.d_model, d, "hidden_size");
  // Qwen2-MoE's experts are moe_intermediate_size wide (its dense blocks: below).
  const char* ff = qwen2_moe ? "moe_intermediate_size" : "intermediate_size";
  fill("d_ff", m.d_ff, h.count(ff, "d_ff"), ff);
  fill("n_layer", m.n_layer, h.count("num_hidden_layers", "n_layer"), "num_hidden_layers");
  fill("n_head", m.n_head, heads, "num_attention_heads");
  if (h.has("num_key_value_heads"))
    fill("n_kv_head", m.n_kv_head, h.count("num_key_value_heads", "n_kv_head"), "num_key_value_heads");
  else
    fill("n_kv_head", m.n_kv_head, heads, "num_key_value_heads null: num_attention_heads");
  fill("max_seq_len", m.max_seq_len, max_pos, "max_position_embeddings");
  // transformers' defaults where config.json leaves a field out.
  fill("norm_eps", m.norm_eps, h.number("rms_norm_eps", mixtral ? 1e-5 : 1e-6), "rms_norm_eps");
  double theta = h.number("rope_theta", mixtral ? 1e6 : 10000);
  if (h.has("rope_parameters") && h.at("rope_parameters").contains("rope_theta")) {
    const json& t = h.at("rope_parameters")["rope_theta"];
    if (!t.is_number() || !(t.get<double>() > 0)) h.unsupported("rope_parameters", "rope_theta must be a positive number");
    theta = t.get<double>();
  }
  fill("rope_theta", m.rope_theta, theta, "rope_theta");
  fill("tie_embeddings", m.tie_embeddings, h.flag("tie_word_embeddings", false), "tie_word_embeddings");
  fill("attn_bias", m.attn_bias, bias, bias_from);
}

// The model.moe keys of a Mixtral (every block MoE, no shared experts, top-k weights
// renormalized) or Qwen2-MoE (shared experts behind a sigmoid gate; dense blocks where
// mlp_only_layers and decoder_sparse_step say) config.json.
void fill_moe(ModelConfig& m, const HfJson& h, const HfArch& arch, Filler& fill, const KeySource& set_at) {
  MoeConfig& moe = m.moe;
  const bool mixtral = is(arch, "mixtral");
  fill("moe.n_experts", moe.n_experts, h.count(mixtral ? "num_local_experts" : "num_experts", "moe.n_experts"),
       mixtral ? "num_local_experts" : "num_experts");
  fill("moe.top_k", moe.top_k, h.count("num_experts_per_tok", "moe.top_k"), "num_experts_per_tok");
  // A training choice rather than the architecture: the input's own value wins.
  if (!set_at("model.moe.aux_loss_coef") && h.has("router_aux_loss_coef")) {
    const json& v = h.at("router_aux_loss_coef");
    if (!v.is_number() || v.get<double>() < 0) h.unsupported("router_aux_loss_coef", "expected a number >= 0");
    fill("moe.aux_loss_coef", moe.aux_loss_coef, v.get<double>(), "router_aux_loss_coef");
  }
  if (mixtral) {
    if (h.has("router_jitter_noise") && h.at("router_jitter_noise") != 0)
      h.unsupported("router_jitter_noise", "the router adds no noise");
    fill("moe.n_shared_experts", moe.n_shared_experts, int64_t{0}, "mixtral: no shared experts");
    fill("moe.norm_topk_prob", moe.norm_topk_prob, true, "mixtral: top-k weights renormalized");
    fill("moe.every_n_layers", moe.every_n_layers, int64_t{1}, "mixtral: every block is MoE");
    return;
  }
  const int64_t F = h.count("moe_intermediate_size", "d_ff");
  const int64_t shared = h.has("shared_expert_intermediate_size") ? h.count("shared_expert_intermediate_size", "d_ff") : 0;
  if (shared == 0 || shared % F != 0 || shared / F > 64)
    h.unsupported("shared_expert_intermediate_size",
                  fmt::format("the shared experts are 1 to 64 experts of moe_intermediate_size {} (model.moe.n_shared_experts)", F));
  fill("moe.n_shared_experts", moe.n_shared_experts, shared / F, "shared_expert_intermediate_size / moe_intermediate_size");
  fill("moe.norm_topk_prob", moe.norm_topk_prob, h.flag("norm_topk_prob", false), "norm_topk_prob");
  // Block l is MoE unless l is in mlp_only_layers or (l + 1) % decoder_sparse_step != 0; ours
  // are the blocks with l % every_n_layers == 0.
  const int64_t L = h.count("num_hidden_layers", "n_layer"), step = h.has("decoder_sparse_step") ? h.count("decoder_sparse_step", "n_layer") : 1;
  // Which field makes each block dense (nullptr: an MoE block).
  std::vector<const char*> dense_by(static_cast<size_t>(L), nullptr);
  if (h.has("mlp_only_layers")) {
    const json& list = h.at("mlp_only_layers");
    if (!list.is_array()) h.unsupported("mlp_only_layers", "expected a list of block indices");
    for (const json& l : list) {
      if (!l.is_number_integer() || l.get<int64_t>() < 0 || l.get<int64_t>() >= L)
        h.unsupported("mlp_only_layers", fmt::format("expected block indices below num_hidden_layers {}", L));
      dense_by[static_cast<size_t>(l.get<int64_t>())] = "mlp_only_layers";
    }
  }
  for (int64_t l = 0; l < L; ++l)
    if (!dense_by[static_cast<size_t>(l)] && (l + 1) % step != 0) dense_by[static_cast<size_t>(l)] = "decoder_sparse_step";
  int64_t n = L;  // the first MoE block after block 0 sets the period
  for (int64_t l = 1; l < L; ++l)
    if (!dense_by[static_cast<size_t>(l)]) {
      n = l;
      break;
    }
  for (int64_t l = 0; l < L; ++l)
    if ((dense_by[static_cast<size_t>(l)] != nullptr) != (l % n != 0))
      h.unsupported(dense_by[static_cast<size_t>(l)] ? dense_by[static_cast<size_t>(l)]
                    : h.has("mlp_only_layers")       ? "mlp_only_layers"
                                                     : "decoder_sparse_step",
                    fmt::format("the MoE blocks must be 0, k, 2k, ... for some k (model.moe.every_n_layers); block {} "
                                "is {} here", l, dense_by[static_cast<size_t>(l)] ? "dense" : "MoE"));
  fill("moe.every_n_layers", moe.every_n_layers, n, "mlp_only_layers and decoder_sparse_step");
  if (n > 1 && h.count("intermediate_size", "d_ff") != F)
    h.unsupported("intermediate_size", fmt::format("dense blocks are as wide as the experts (model.d_ff, "
                                                   "moe_intermediate_size {})", F));
}

}  // namespace

bool is_hf_model_dir(const std::string& init_from) {
  std::error_code ec;
  return !init_from.empty() && fs::is_directory(init_from, ec);
}

const std::vector<std::string>& hf_filled_keys() {
  static const std::vector<std::string> keys = {
      "model.family", "model.d_model", "model.d_ff", "model.n_layer", "model.n_head", "model.n_kv_head",
      "model.max_seq_len", "model.vocab_size", "model.norm_eps", "model.tie_embeddings", "model.attn_bias"};
  return keys;
}

std::map<std::string, std::string> fill_from_hf_config(Config& c, const std::string& dir, const KeySource& set_at) {
  const HfJson h = read_config_json(dir);
  const HfArch& arch = arch_of(h);
  ModelConfig& m = c.model;
  Filler fill(h, set_at);
  fill("family", m.family, arch.family, h.has("model_type") ? "model_type" : "architectures");
  // Keys HF's config.json cannot describe: the directory's weights lack their tensors.
  for (auto [key, on] : {std::pair{"model.attn_gate", m.attn_gate}, std::pair{"model.worker_interval", m.worker_interval > 0},
                         std::pair{"model.moe.n_experts", m.moe.n_experts > 0 && !is_moe(arch)}})
    if (on)
      fail("{}: {} is set, but {} describes a standard {} without it (its weights have no such tensors)",
           set_at(key).value_or(key), key, h.path(), arch.architecture);
  if (arch.family == ModelFamily::gpt2)
    fill_gpt2(m, h, fill);
  else
    fill_llama(m, h, arch, fill);
  if (is_moe(arch)) fill_moe(m, h, arch, fill, set_at);
  fill("vocab_size", m.vocab_size, h.count("vocab_size", "vocab_size"), "vocab_size");

  std::map<std::string, std::string> filled = std::move(fill.filled());
  if (!set_at("data.tokenizer")) {
    const fs::path d(dir);
    std::string found;
    if (is_file(d / "tokenizer.json"))
      found = (d / "tokenizer.json").string();
    else if (is_file(d / "vocab.json") && is_file(d / "merges.txt"))
      found = (d / "vocab.json").string();
    if (!found.empty()) {
      c.data.tokenizer = found;
      filled["data.tokenizer"] = "the tokenizer of model.init_from " + dir;
    }
  }
  return filled;
}

HfSpecialTokens hf_special_tokens(const std::string& dir) {
  HfSpecialTokens out;
  try {
    std::ifstream in(fs::path(dir) / "config.json");
    const json j = json::parse(in);
    auto id = [&](const char* f) -> std::optional<int64_t> {
      if (j.contains(f) && j[f].is_number_integer() && j[f].get<int64_t>() >= 0) return j[f].get<int64_t>();
      return std::nullopt;
    };
    out.bos = id("bos_token_id");
    out.eos = id("eos_token_id");
  } catch (const std::exception&) {
  }
  return out;
}

std::string hf_config_text(const ModelConfig& m, const HfSpecialTokens& special) {
  if (m.attn_gate)
    fail("model.attn_gate: Hugging Face transformers has no gated attention; export to a single .safetensors file instead");
  if (m.worker_interval > 0)
    fail("model.worker_interval: Hugging Face transformers has no WorkerTransformer; export to a single .safetensors file "
         "instead");
  const bool bias = m.family == ModelFamily::llama && *m.attn_bias;  // q/k/v biases: Qwen2's layout
  const bool moe = m.moe.n_experts > 0, shared = m.moe.n_shared_experts > 0;
  // An MoE model's weights carry Mixtral's names without shared experts and Qwen2-MoE's with
  // them: each architecture's config.json must then describe the rest of the model too.
  if (moe && !shared) {
    const char* why = *m.attn_bias ? "model.attn_bias: Mixtral's attention has no biases"
                      : !m.moe.norm_topk_prob ? "model.moe.norm_topk_prob: Mixtral always renormalizes the top-k weights"
                      : m.moe.every_n_layers != 1 ? "model.moe.every_n_layers: every Mixtral block is MoE"
                                                  : nullptr;
    if (why)
      fail("{}; an MoE model without shared experts is written as Mixtral (set model.moe.n_shared_experts and "
           "model.attn_bias: true for Qwen2-MoE, or export to a single .safetensors file)", why);
  }
  if (moe && shared && !*m.attn_bias)
    fail("model.attn_bias: an MoE model with shared experts is written as Qwen2-MoE, whose attention has q/k/v "
         "biases; set model.attn_bias: true, or export to a single .safetensors file");
  const HfArch& arch = arch_named(m.family == ModelFamily::gpt2 ? "gpt2"
                                  : moe                        ? (shared ? "qwen2_moe" : "mixtral")
                                  : bias                       ? "qwen2"
                                                               : "llama");
  nlohmann::ordered_json j;
  j["architectures"] = {arch.architecture};
  j["model_type"] = arch.model_type;
  if (m.family == ModelFamily::gpt2) {
    j["vocab_size"] = m.vocab_size;
    j["n_positions"] = m.max_seq_len;
    j["n_embd"] = m.d_model;
    j["n_layer"] = m.n_layer;
    j["n_head"] = m.n_head;
    j["n_inner"] = m.d_ff;
    j["activation_function"] = "gelu_new";
    j["layer_norm_epsilon"] = m.norm_eps;
  } else {
    j["vocab_size"] = m.vocab_size;
    j["hidden_size"] = m.d_model;
    j["intermediate_size"] = m.d_ff;
    j["num_hidden_layers"] = m.n_layer;
    j["num_attention_heads"] = m.n_head;
    j["num_key_value_heads"] = m.n_kv_head;
    j["hidden_act"] = "silu";
    j["max_position_embeddings"] = m.max_seq_len;
    j["rms_norm_eps"] = m.norm_eps;
    j["rope_theta"] = m.rope_theta;
    j["rope_scaling"] = nullptr;
    if (is(arch, "qwen2") || is(arch, "qwen2_moe"))
      j["use_sliding_window"] = false;
    else if (is(arch, "mixtral"))
      j["sliding_window"] = nullptr;
    else
      j["attention_bias"] = false;
    if (is(arch, "mixtral")) {
      j["num_local_experts"] = m.moe.n_experts;
      j["num_experts_per_tok"] = m.moe.top_k;
      j["router_aux_loss_coef"] = m.moe.aux_loss_coef;
      j["router_jitter_noise"] = 0.0;
      j["output_router_logits"] = false;
    } else if (is(arch, "qwen2_moe")) {
      j["num_experts"] = m.moe.n_experts;
      j["num_experts_per_tok"] = m.moe.top_k;
      j["moe_intermediate_size"] = m.d_ff;
      j["shared_expert_intermediate_size"] = m.moe.n_shared_experts * m.d_ff;
      j["norm_topk_prob"] = m.moe.norm_topk_prob;
      // Ours are the blocks l % every_n_layers == 0; Qwen2-MoE's step counts from l + 1, so
      // the dense blocks are listed instead.
      j["decoder_sparse_step"] = 1;
      j["mlp_only_layers"] = nlohmann::json::array();
      for (int64_t l = 0; l < m.n_layer; ++l)
        if (l % m.moe.every_n_layers != 0) j["mlp_only_layers"].push_back(l);
      j["router_aux_loss_coef"] = m.moe.aux_loss_coef;
      j["output_router_logits"] = false;
    }
  }
  j["tie_word_embeddings"] = *m.tie_embeddings;
  j["initializer_range"] = m.init_std;
  if (special.bos) j["bos_token_id"] = *special.bos;
  if (special.eos) j["eos_token_id"] = *special.eos;
  j["torch_dtype"] = "float32";
  return j.dump(2) + "\n";
}

}  // namespace zt
