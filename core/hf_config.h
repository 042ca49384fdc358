// Hugging Face config.json and the model section: which config.json field holds each model
// key, for GPT2LMHeadModel, the llama-style LlamaForCausalLM, MistralForCausalLM and
// Qwen2ForCausalLM (q/k/v biases), and the Mixture of Experts MixtralForCausalLM and
// Qwen2MoeForCausalLM (shared experts, q/k/v biases). What the model keys cannot describe
// (RoPE scaling, a sliding window in use, another activation, o_proj or MLP biases, router
// noise, MoE blocks at other than every k-th block, another model type) is an error naming the
// config.json field, never ignored.
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"

namespace zt {

// model.init_from names a Hugging Face model directory (config.json plus model.safetensors
// or model.safetensors.index.json) rather than one .safetensors file.
bool is_hf_model_dir(const std::string& init_from);

// The key paths config.json fills ("model.n_layer", ...).
const std::vector<std::string>& hf_filled_keys();

// Where the input set a key ("config.yaml:7", "--set model.n_layer"); nullopt when it did not.
using KeySource = std::function<std::optional<std::string>(const std::string& key_path)>;

// Fills the model keys from DIR/config.json. A key the input set must agree with it, else the
// error names both values and both sources. When data.tokenizer is unset and DIR holds a
// tokenizer (tokenizer.json, or vocab.json + merges.txt), data.tokenizer names that file.
// Returns each key path it filled and where the value came from ("hf/config.json (hidden_size)").
std::map<std::string, std::string> fill_from_hf_config(Config& config, const std::string& dir, const KeySource& set_at);

// Token ids config.json may carry beside the model.
struct HfSpecialTokens {
  std::optional<int64_t> bos, eos;
};
// bos_token_id and eos_token_id of DIR/config.json, each when it is an integer.
HfSpecialTokens hf_special_tokens(const std::string& dir);

// config.json for a resolved model section: architectures, model_type, the family's fields,
// torch_dtype float32, and bos/eos ids when known. An MoE model is Mixtral without shared
// experts and Qwen2-MoE with them. Keys HF cannot express (model.attn_gate,
// model.worker_interval, and what the MoE architecture cannot: Mixtral's attention biases, its
// top-k weights not renormalized, dense blocks; Qwen2-MoE without q/k/v biases) are errors
// naming the key.
std::string hf_config_text(const ModelConfig& model, const HfSpecialTokens& special = {});

}  // namespace zt
