#!/usr/bin/env python3
"""Checks a Hugging Face model directory written by `zt export -o DIR/` with the reference
readers: every tensor read with safetensors.numpy, the index (when sharded) covering each
tensor exactly once with the right total_size, names and shapes derived from config.json
alone, tokenizer.json read by tokenizers, and with --transformers config.json read by
transformers' AutoConfig into the config class of its model_type, every field as written.

usage: hf_dir_check.py DIR [--transformers] [--logits FILE.json]
                             prints a JSON summary; exit 1 with the reason on a mismatch.
                             --logits: the largest difference, relative to the largest
                             logit, between FILE's logits and those of a numpy forward pass
                             that follows transformers' modeling code for the model_type
       hf_dir_check.py --make-tokenizer OUT.json
                             writes a small GPT-2-style byte-level BPE tokenizer.json (300 ids)
                             trained on data/tinyshakespeare.txt, for runs to export
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file

# The keys transformers reads for each model_type (the rest have defaults there).
REQUIRED = {
    "gpt2": ["vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_inner",
             "activation_function", "layer_norm_epsilon", "tie_word_embeddings"],
    "llama": ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
              "num_attention_heads", "num_key_value_heads", "hidden_act", "max_position_embeddings",
              "rms_norm_eps", "rope_theta", "tie_word_embeddings", "attention_bias"],
}
REQUIRED["qwen2"] = [k for k in REQUIRED["llama"] if k != "attention_bias"] + ["use_sliding_window"]
REQUIRED["mixtral"] = [k for k in REQUIRED["llama"] if k != "attention_bias"] + [
    "sliding_window", "num_local_experts", "num_experts_per_tok", "router_aux_loss_coef", "router_jitter_noise"]
REQUIRED["qwen2_moe"] = REQUIRED["qwen2"] + [
    "num_experts", "num_experts_per_tok", "moe_intermediate_size", "shared_expert_intermediate_size",
    "norm_topk_prob", "decoder_sparse_step", "mlp_only_layers", "router_aux_loss_coef"]
ARCHITECTURE = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM",
                "mixtral": "MixtralForCausalLM", "qwen2_moe": "Qwen2MoeForCausalLM"}
CONFIG_CLASS = {"gpt2": "GPT2Config", "llama": "LlamaConfig", "qwen2": "Qwen2Config",
                "mixtral": "MixtralConfig", "qwen2_moe": "Qwen2MoeConfig"}


def sparse_layer(c, i):
    """Whether block i runs a sparse MoE block, as modeling_mixtral / modeling_qwen2_moe decide."""
    if c["model_type"] == "mixtral":
        return True
    if c["model_type"] == "qwen2_moe":
        return i not in c["mlp_only_layers"] and c["num_experts"] > 0 and (i + 1) % c["decoder_sparse_step"] == 0
    return False


def expected_shapes(c):
    """Tensor name -> shape, from config.json as transformers builds the model."""
    t = c["model_type"]
    out = {}
    if t == "gpt2":
        C, F, V, L = c["n_embd"], c["n_inner"], c["vocab_size"], c["n_layer"]
        out["transformer.wte.weight"] = [V, C]
        out["transformer.wpe.weight"] = [c["n_positions"], C]
        for i in range(L):
            p = f"transformer.h.{i}."
            out.update({p + "ln_1.weight": [C], p + "ln_1.bias": [C],
                        p + "attn.c_attn.weight": [C, 3 * C], p + "attn.c_attn.bias": [3 * C],
                        p + "attn.c_proj.weight": [C, C], p + "attn.c_proj.bias": [C],
                        p + "ln_2.weight": [C], p + "ln_2.bias": [C],
                        p + "mlp.c_fc.weight": [C, F], p + "mlp.c_fc.bias": [F],
                        p + "mlp.c_proj.weight": [F, C], p + "mlp.c_proj.bias": [C]})
        out["transformer.ln_f.weight"] = [C]
        out["transformer.ln_f.bias"] = [C]
    else:
        C, F, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
        H, KV = c["num_attention_heads"], c["num_key_value_heads"]
        D = C // H
        out["model.embed_tokens.weight"] = [V, C]
        for i in range(c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            out.update({p + "input_layernorm.weight": [C],
                        p + "self_attn.q_proj.weight": [H * D, C], p + "self_attn.k_proj.weight": [KV * D, C],
                        p + "self_attn.v_proj.weight": [KV * D, C], p + "self_attn.o_proj.weight": [C, H * D],
                        p + "post_attention_layernorm.weight": [C]})
            if t == "mixtral":
                q = p + "block_sparse_moe."
                out[q + "gate.weight"] = [c["num_local_experts"], C]
                for e in range(c["num_local_experts"]):
                    out.update({f"{q}experts.{e}.w1.weight": [F, C], f"{q}experts.{e}.w3.weight": [F, C],
                                f"{q}experts.{e}.w2.weight": [C, F]})
            elif sparse_layer(c, i):
                E, M, S = c["num_experts"], c["moe_intermediate_size"], c["shared_expert_intermediate_size"]
                out[p + "mlp.gate.weight"] = [E, C]
                for e in range(E):
                    out.update({f"{p}mlp.experts.{e}.gate_proj.weight": [M, C],
                                f"{p}mlp.experts.{e}.up_proj.weight": [M, C],
                                f"{p}mlp.experts.{e}.down_proj.weight": [C, M]})
                out.update({p + "mlp.shared_expert.gate_proj.weight": [S, C], p + "mlp.shared_expert.up_proj.weight": [S, C],
                            p + "mlp.shared_expert.down_proj.weight": [C, S], p + "mlp.shared_expert_gate.weight": [1, C]})
            else:
                out.update({p + "mlp.gate_proj.weight": [F, C], p + "mlp.up_proj.weight": [F, C],
                            p + "mlp.down_proj.weight": [C, F]})
            if t in ("qwen2", "qwen2_moe"):
                out.update({p + "self_attn.q_proj.bias": [H * D], p + "self_attn.k_proj.bias": [KV * D],
                            p + "self_attn.v_proj.bias": [KV * D]})
        out["model.norm.weight"] = [C]
    if not c["tie_word_embeddings"]:
        out["lm_head.weight"] = [V, C]
    return out


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def rms_norm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def causal_attention(q, k, v):
    """q [H, T, D], k and v [H, T, D] -> [T, H * D]."""
    H, T, D = q.shape
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(D)
    scores = np.where(np.tril(np.ones((T, T), dtype=bool)), scores, -np.inf)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return (p @ v).transpose(1, 0, 2).reshape(T, H * D)


def reference_logits(c, w, ids):
    """Logits [T, V] of one sequence, following transformers' modeling_gpt2 / modeling_llama /
    modeling_qwen2 / modeling_mixtral / modeling_qwen2_moe (float64): Conv1D weights are
    [in, out], nn.Linear weights [out, in], RoPE rotates halves (rotate_half), GQA repeats each
    kv head for its query heads."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    T = len(ids)
    if c["model_type"] == "gpt2":
        C, H = c["n_embd"], c["n_head"]
        eps = c["layer_norm_epsilon"]
        x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][:T]
        for i in range(c["n_layer"]):
            p = f"transformer.h.{i}."
            a = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
            qkv = a @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
            q, k, v = (qkv[:, j * C:(j + 1) * C].reshape(T, H, C // H).transpose(1, 0, 2) for j in range(3))
            x = x + causal_attention(q, k, v) @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
            m = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
            h = m @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"]
            h = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h ** 3)))  # gelu_new
            x = x + h @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
        x = layer_norm(x, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)
        head = w["lm_head.weight"] if "lm_head.weight" in w else w["transformer.wte.weight"]
        return x @ head.T
    C, H, KV = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    D, eps = C // H, c["rms_norm_eps"]
    inv_freq = 1.0 / (c["rope_theta"] ** (np.arange(0, D, 2, dtype=np.float64) / D))
    freqs = np.outer(np.arange(T, dtype=np.float64), inv_freq)
    cos, sin = np.cos(np.concatenate([freqs, freqs], -1)), np.sin(np.concatenate([freqs, freqs], -1))

    def rope(t):  # [heads, T, D]
        rotated = np.concatenate([-t[..., D // 2:], t[..., :D // 2]], -1)
        return t * cos + rotated * sin

    def linear(x, name):
        y = x @ w[name + ".weight"].T
        return y + w[name + ".bias"] if name + ".bias" in w else y

    def swiglu(x, gate, up, down):
        g = linear(x, gate)
        return linear(g / (1 + np.exp(-g)) * linear(x, up), down)

    def sparse_moe(x, p):
        """MixtralSparseMoeBlock / Qwen2MoeSparseMoeBlock: softmax over the experts, the top k
        (Mixtral always renormalizes them, Qwen2-MoE when norm_topk_prob), and Qwen2-MoE's
        shared expert behind its sigmoid gate."""
        mixtral = c["model_type"] == "mixtral"
        q = p + ("block_sparse_moe." if mixtral else "mlp.")
        logits = linear(x, q + "gate")
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        k = c["num_experts_per_tok"]
        top = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
        weights = np.take_along_axis(probs, top, -1)
        if mixtral or c["norm_topk_prob"]:
            weights /= weights.sum(-1, keepdims=True)
        out = np.zeros_like(x)
        for row in range(x.shape[0]):
            for j in range(k):
                e = f"{q}experts.{top[row, j]}."
                names = ("w1", "w3", "w2") if mixtral else ("gate_proj", "up_proj", "down_proj")
                out[row] += weights[row, j] * swiglu(x[row:row + 1], *(e + n for n in names))[0]
        if not mixtral:
            g = linear(x, q + "shared_expert_gate")
            out += 1 / (1 + np.exp(-g)) * swiglu(x, q + "shared_expert.gate_proj", q + "shared_expert.up_proj",
                                                  q + "shared_expert.down_proj")
        return out

    x = w["model.embed_tokens.weight"][ids]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = rope(linear(a, p + "self_attn.q_proj").reshape(T, H, D).transpose(1, 0, 2))
        k = rope(linear(a, p + "self_attn.k_proj").reshape(T, KV, D).transpose(1, 0, 2))
        v = linear(a, p + "self_attn.v_proj").reshape(T, KV, D).transpose(1, 0, 2)
        k, v = np.repeat(k, H // KV, axis=0), np.repeat(v, H // KV, axis=0)
        x = x + linear(causal_attention(q, k, v), p + "self_attn.o_proj")
        m = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        if sparse_layer(c, i):
            x = x + sparse_moe(m, p)
        else:
            x = x + swiglu(m, p + "mlp.gate_proj", p + "mlp.up_proj", p + "mlp.down_proj")
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["lm_head.weight"] if "lm_head.weight" in w else w["model.embed_tokens.weight"]
    return x @ head.T


def read_weights(d):
    """name -> array over model.safetensors or the shards; checks the index."""
    index_path = os.path.join(d, "model.safetensors.index.json")
    if not os.path.exists(index_path):
        return load_file(os.path.join(d, "model.safetensors")), 1
    with open(index_path) as f:
        index = json.load(f)
    weight_map = index["weight_map"]
    shards = sorted(set(weight_map.values()))
    n = len(shards)
    want_names = [f"model-{k + 1:05d}-of-{n:05d}.safetensors" for k in range(n)]
    if shards != want_names:
        raise SystemExit(f"shard names {shards}, expected {want_names}")
    found = {}
    for shard in shards:
        for name, array in load_file(os.path.join(d, shard)).items():
            if name in found:
                raise SystemExit(f"{name} is in two shards")
            if weight_map.get(name) != shard:
                raise SystemExit(f"{name} is in {shard}, the index says {weight_map.get(name)}")
            found[name] = array
    if set(found) != set(weight_map):
        raise SystemExit(f"index and shards differ: {sorted(set(found) ^ set(weight_map))}")
    total = sum(a.nbytes for a in found.values())
    if index["metadata"]["total_size"] != total:
        raise SystemExit(f"metadata.total_size {index['metadata']['total_size']}, the tensors hold {total} bytes")
    return found, n


def make_tokenizer(out):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "data", "tinyshakespeare.txt")) as f:
        tok.train_from_iterator([f.read(30000)], trainer=trainer)
    tok.save(out)


def main():
    if sys.argv[1] == "--make-tokenizer":
        return make_tokenizer(sys.argv[2])
    d = sys.argv[1]
    with open(os.path.join(d, "config.json")) as f:
        c = json.load(f)
    t = c.get("model_type")
    if t not in REQUIRED:
        raise SystemExit(f"model_type {t!r}")
    missing = [k for k in REQUIRED[t] + ["architectures", "torch_dtype"] if k not in c]
    if missing:
        raise SystemExit(f"config.json lacks {missing}")
    if c["architectures"] != [ARCHITECTURE[t]] or c["torch_dtype"] != "float32":
        raise SystemExit(f"architectures {c['architectures']}, torch_dtype {c['torch_dtype']}")

    weights, shards = read_weights(d)
    want = expected_shapes(c)
    if set(weights) != set(want):
        raise SystemExit(f"tensor names differ from config.json's model: {sorted(set(weights) ^ set(want))}")
    for name, array in weights.items():
        if list(array.shape) != want[name] or array.dtype != np.float32 or not np.isfinite(array).all():
            raise SystemExit(f"{name}: {array.dtype} {list(array.shape)}, expected float32 {want[name]}, finite")

    summary = {"model_type": t, "tensors": len(weights), "shards": shards, "transformers": None}
    if "--logits" in sys.argv[2:]:
        # {"tokens": [[ids]...], "logits": [[[V floats] per position]...]} from zerotrain.
        with open(sys.argv[sys.argv.index("--logits") + 1]) as f:
            theirs = json.load(f)
        worst = 0.0
        for ids, logits in zip(theirs["tokens"], theirs["logits"]):
            want = reference_logits(c, weights, np.array(ids))
            worst = max(worst, float(np.abs(want - np.array(logits)).max() / max(np.abs(want).max(), 1e-30)))
        summary["logits_max_rel_diff"] = worst
    if "--transformers" in sys.argv[2:]:
        import transformers
        hf = transformers.AutoConfig.from_pretrained(d)
        if hf.model_type != t or type(hf).__name__ != CONFIG_CLASS[t]:
            raise SystemExit(f"AutoConfig read {type(hf).__name__} ({hf.model_type})")
        for k in REQUIRED[t]:
            if getattr(hf, k) != c[k]:
                raise SystemExit(f"AutoConfig.{k} = {getattr(hf, k)!r}, config.json says {c[k]!r}")
        summary["transformers"] = transformers.__version__
    if os.path.exists(os.path.join(d, "tokenizer.json")):
        import tokenizers
        summary["tokenizer_vocab"] = tokenizers.Tokenizer.from_file(os.path.join(d, "tokenizer.json")).get_vocab_size()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
