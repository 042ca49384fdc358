// A Hugging Face tokenizer.json for tokenizers that have no file of that form, so that an
// exported model directory always carries one that `tokenizers` / transformers load and that
// gives our ids:
//   tiktoken ranks: byte-level BPE (vocab = the ranks, one merge per token recovered from the
//     ranks, ignore_merges as tiktoken takes a piece that is a token whole) behind a Split of
//     tiktoken's regex and ByteLevel without its own regex;
//   byte: byte-level BPE of the 256 bytes and no merges (GPT-2's ByteLevel pre-tokenizer);
//   char: WordLevel over the vocabulary's characters behind a Split that isolates each one,
//     decoded by Fuse (concatenation).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace zt {

class Tokenizer;
class BpeTokenizer;

std::string hf_tokenizer_json(const Tokenizer& tokenizer);

// Reads a tokenizer.json: the char form above as a char tokenizer (so a model directory
// exported from a char run fine-tunes with its own tokenizer), anything else as BPE
// (load_hf_tokenizer). `j` is the parsed file.
std::unique_ptr<Tokenizer> load_hf_tokenizer_json(const std::string& path, const nlohmann::json& j);

// Recovered merges of a tiktoken vocabulary, in rank order: for each token, the two tokens
// that BPE on the token's own bytes joins last (none when BPE never reaches the token, which
// is then produced only as a whole piece). Exposed for tests.
struct RecoveredMerge {
  uint32_t left, right, merged;
};
std::vector<RecoveredMerge> merges_from_ranks(const BpeTokenizer& tokenizer);

}  // namespace zt
