// Byte-level BPE files (core/data/bpe_files.h): Hugging Face tokenizer.json, GPT-2's
// vocab.json + merges.txt and tiktoken rank files, then encoding text with what loaded.
// Input: one format byte ('j' tokenizer.json, 'g' vocab.json + merges.txt, 't' .tiktoken
// read with the cl100k pattern, 'T' with the GPT-2 pattern), then the file(s) and the text,
// NUL-separated. A tokenizer that loads must give ids below its vocab size, and its decode
// must give the text back wherever every byte of the text has a token (byte-level BPE loses
// nothing), normalized when the tokenizer has an NFC normalizer: NFC is applied between added
// tokens, and NFC(NFC(a) + NFC(b)) = NFC(a + b), so the NFC of both sides must agree.
#include "core/data/bpe_files.h"
#include "core/data/nfc.h"
#include "fuzz/fuzz_util.h"

namespace {

void check_encode(const zt::BpeTokenizer& tok, std::string_view text) {
  std::vector<uint32_t> ids;
  try {
    ids = tok.encode(text);
  } catch (const zt::Error&) {
    return;  // a byte without a token: refused, naming it
  }
  for (uint32_t id : ids)
    if (id >= tok.vocab_size()) std::abort();
  const bool nfc = tok.model().normalizer == zt::Normalizer::nfc;
  const std::string decoded = tok.decode(ids);
  if (nfc ? zt::unicode::nfc(decoded) != zt::unicode::nfc(text) : decoded != text) {
    std::fprintf(stderr, "decode(encode(text)) differs from the text\n");
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  zt::fuzz::setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const char format = static_cast<char>(data[0]);
  const auto parts = zt::fuzz::split_parts(data + 1, size - 1, format == 'g' ? 3 : 2);
  const std::filesystem::path dir = zt::fuzz::fresh_dir();
  const std::string_view text = parts.size() > 1 ? parts.back() : std::string_view{};
  zt::fuzz::expect_clean([&] {
    std::unique_ptr<zt::BpeTokenizer> tok;
    switch (format) {
      case 'j': {
        const auto path = dir / "tokenizer.json";
        zt::fuzz::write_bytes(path, parts[0]);
        tok = zt::load_hf_tokenizer(path.string());
        break;
      }
      case 'g': {
        const auto vocab = dir / "vocab.json", merges = dir / "merges.txt";
        zt::fuzz::write_bytes(vocab, parts[0]);
        zt::fuzz::write_bytes(merges, parts.size() > 1 ? parts[1] : std::string_view{});
        tok = zt::load_gpt2_tokenizer(vocab.string(), merges.string());
        break;
      }
      case 't':
      case 'T': {
        const auto path = dir / (format == 't' ? "cl100k_base.tiktoken" : "gpt2.tiktoken");
        zt::fuzz::write_bytes(path, parts[0]);
        tok = zt::load_tiktoken(path.string(), zt::tiktoken_pattern_for(path.string()));
        break;
      }
      default:
        return;
    }
    check_encode(*tok, text);
  });
  return 0;
}
