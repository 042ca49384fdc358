#!/usr/bin/env python3
"""Checks a Hugging Face model directory written by `zt export -o DIR/` with the reference
readers: every tensor read with safetensors.numpy, the index (when sharded) covering each
tensor exactly once with the right total_size, names and shapes derived from config.json
alone, tokenizer.json read by tokenizers, and with --transformers config.json read by
transformers' AutoConfig into the config class of its model_type, every field as written.

usage: hf_dir_check.py DIR [--transformers]
                             prints a JSON summary; exit 1 with the reason on a mismatch
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
ARCHITECTURE = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}


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
                        p + "post_attention_layernorm.weight": [C],
                        p + "mlp.gate_proj.weight": [F, C], p + "mlp.up_proj.weight": [F, C],
                        p + "mlp.down_proj.weight": [C, F]})
            if t == "qwen2":
                out.update({p + "self_attn.q_proj.bias": [H * D], p + "self_attn.k_proj.bias": [KV * D],
                            p + "self_attn.v_proj.bias": [KV * D]})
        out["model.norm.weight"] = [C]
    if not c["tie_word_embeddings"]:
        out["lm_head.weight"] = [V, C]
    return out


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
    if "--transformers" in sys.argv[2:]:
        import transformers
        hf = transformers.AutoConfig.from_pretrained(d)
        if hf.model_type != t or type(hf).__name__ != {"gpt2": "GPT2Config", "llama": "LlamaConfig", "qwen2": "Qwen2Config"}[t]:
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
