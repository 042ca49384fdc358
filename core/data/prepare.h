// Text files -> token files: the corpus is read in chunks cut only where the tokenizers cut
// anyway (see next_chunk in prepare.cpp), chunks are encoded in parallel and streamed to
// OUT_DIR/<name>.train.bin (or shards <name>.train.000000.bin, ... of shard_tokens each), so
// inputs larger than memory work; the last val_fraction of the tokens is then moved to
// <name>.val.bin, and the tokenizer saved as <name>.vocab.json (with copies of its BPE files). Each input file is encoded on its own: no token spans two.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace zt {

class Tokenizer;

struct PreparedText {
  std::string train_path, val_path, vocab_path;  // val_path empty when val_fraction is 0
  std::vector<std::string> train_shards;          // every train file, in order (train_path is the first)
  int64_t train_tokens = 0, val_tokens = 0, vocab_size = 0;
  int64_t text_bytes = 0;
};

struct PrepareOptions {
  std::vector<std::string> inputs;  // text files, in order
  std::string out_dir;
  std::string name;  // output stem; empty = the stem of the first input
  double val_fraction = 0.1;
  bool progress = false;             // a progress line with MB/s on stderr (long inputs only)
  int64_t chunk_bytes = 1 << 22;     // text per parallel encode task
  int64_t shard_tokens = 0;          // train tokens per shard file; 0 = one file, <name>.train.bin
};

// Writes the files, or on any error nothing: temp files are removed, and so is an output
// directory this call created. It removes <name>.train shards and a <name>.val.bin left by
// an earlier run that this one did not write: they would no longer match.
PreparedText prepare_corpus(const Tokenizer& tokenizer, const PrepareOptions& options);

// The char tokenizer of several files: their distinct code points (one streaming pass).
std::unique_ptr<Tokenizer> char_tokenizer_of_files(const std::vector<std::string>& inputs);
// `kind` char (built from the inputs), byte, or a tokenizer path (load_tokenizer).
std::unique_ptr<Tokenizer> tokenizer_for_inputs(const std::string& kind, const std::vector<std::string>& inputs);

// One text file into OUT_DIR/<stem>.{train,val}.bin and <stem>.vocab.json.
PreparedText prepare_text(const std::string& text_path, const Tokenizer& tokenizer, const std::string& out_dir,
                          double val_fraction);
// The same with a tokenizer of `kind` (char: built from this text; byte; or a tokenizer path).
PreparedText prepare_text(const std::string& text_path, const std::string& kind, const std::string& out_dir,
                          double val_fraction);
// The paths prepare_text writes, without writing (token counts left 0).
PreparedText prepared_paths(const std::string& text_path, const std::string& out_dir, double val_fraction);

}  // namespace zt
