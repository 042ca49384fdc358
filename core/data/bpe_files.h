// Readers of byte-level BPE files: Hugging Face tokenizer.json, GPT-2's vocab.json +
// merges.txt, and tiktoken's rank files. Anything they cannot reproduce exactly (another
// model type, a normalizer other than NFC, an unknown pre-tokenizer regex) is an error
// naming the field.
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/data/bpe.h"

namespace zt {

std::unique_ptr<BpeTokenizer> load_hf_tokenizer(const std::string& path);
std::unique_ptr<BpeTokenizer> load_hf_tokenizer(const std::string& path, const nlohmann::json& j);
std::unique_ptr<BpeTokenizer> load_gpt2_tokenizer(const std::string& vocab_path, const std::string& merges_path);
std::unique_ptr<BpeTokenizer> load_tiktoken(const std::string& path, PretokPattern pattern);

// A .tiktoken file carries no regex, so its name decides: r50k / p50k / gpt2 in the file name
// mean the GPT-2 pattern, o200k is refused (its pattern is not implemented), anything else
// (cl100k_base.tiktoken, a file of one's own) the cl100k pattern.
PretokPattern tiktoken_pattern_for(const std::string& path);

}  // namespace zt
