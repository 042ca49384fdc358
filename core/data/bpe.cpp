#include "core/data/bpe.h"

#include <algorithm>
#include <atomic>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/data/nfc.h"
#include "core/error.h"

namespace zt {

namespace fs = std::filesystem;

void MergeTable::insert(uint32_t left, uint32_t right, Merge m) {
  if ((size_ + 1) * 2 > keys_.size()) grow();
  const uint64_t key = pack(left, right);
  for (size_t i = slot(key);; i = (i + 1) & mask_) {
    if (keys_[i] == key) {
      values_[i] = m;  // a repeated pair keeps the later merge, as Hugging Face's loader does
      return;
    }
    if (keys_[i] == kEmpty) {
      keys_[i] = key;
      values_[i] = m;
      ++size_;
      return;
    }
  }
}

void MergeTable::grow() {
  std::vector<uint64_t> old_keys = std::move(keys_);
  std::vector<Merge> old_values = std::move(values_);
  const size_t cap = std::max<size_t>(1024, old_keys.size() * 2);
  keys_.assign(cap, kEmpty);
  values_.assign(cap, Merge{});
  mask_ = cap - 1;
  size_ = 0;
  for (size_t i = 0; i < old_keys.size(); ++i)
    if (old_keys[i] != kEmpty) insert(static_cast<uint32_t>(old_keys[i] >> 32), static_cast<uint32_t>(old_keys[i]), old_values[i]);
}

namespace {

std::atomic<uint64_t> next_serial{1};

// Pieces repeat (words, spaces, punctuation): most are merged once per thread and then
// looked up. Owned per thread so parallel encoders never lock.
struct PieceCache {
  static constexpr size_t kMaxEntries = 1 << 18;
  static constexpr size_t kMaxPieceBytes = 64;
  uint64_t owner = 0;
  std::unordered_map<std::string, std::vector<uint32_t>, StringHash, std::equal_to<>> map;
};

PieceCache& piece_cache(uint64_t owner) {
  thread_local PieceCache cache;
  if (cache.owner != owner || cache.map.size() >= PieceCache::kMaxEntries) {
    cache.map.clear();
    cache.owner = owner;
  }
  return cache;
}

}  // namespace

BpeTokenizer::BpeTokenizer(BpeModel model, BpeSource source)
    : model_(std::move(model)), source_(std::move(source)), serial_(next_serial++) {
  for (int b = 0; b < 256; ++b) {
    auto it = model_.ids.find(std::string_view(reinterpret_cast<const char*>(&b), 1));
    byte_id_[b] = it == model_.ids.end() ? -1 : static_cast<int32_t>(it->second);
  }
  // Longest first, so that of two added tokens starting at the same place the longer wins.
  std::stable_sort(model_.added.begin(), model_.added.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  for (const auto& [content, id] : model_.added) added_starts_[static_cast<unsigned char>(content[0])] = true;
}

void BpeTokenizer::merge_piece(std::string_view piece, std::vector<uint32_t>& out) const {
  thread_local std::vector<uint32_t> parts, ranks;  // ranks[i]: rank of merging parts i and i+1
  parts.clear();
  for (size_t i = 0; i < piece.size(); ++i) {
    const auto b = static_cast<unsigned char>(piece[i]);
    if (byte_id_[b] < 0)
      fail("{}: byte 0x{:02X} has no token, so text holding it cannot be encoded", source_.files[0], b);
    parts.push_back(static_cast<uint32_t>(byte_id_[b]));
  }
  auto rank_at = [&](size_t i) {
    const MergeTable::Merge* m = model_.merges.find(parts[i], parts[i + 1]);
    return m ? m->rank : UINT32_MAX;
  };
  ranks.resize(parts.size() - 1);
  for (size_t i = 0; i + 1 < parts.size(); ++i) ranks[i] = rank_at(i);
  while (parts.size() > 1) {
    const size_t best = std::min_element(ranks.begin(), ranks.end()) - ranks.begin();  // leftmost lowest
    if (ranks[best] == UINT32_MAX) break;
    parts[best] = model_.merges.find(parts[best], parts[best + 1])->id;
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    ranks.erase(ranks.begin() + static_cast<std::ptrdiff_t>(best));
    if (best > 0) ranks[best - 1] = rank_at(best - 1);
    if (best + 1 < parts.size()) ranks[best] = rank_at(best);
  }
  out.insert(out.end(), parts.begin(), parts.end());
}

void BpeTokenizer::encode_piece(std::string_view piece, std::vector<uint32_t>& out) const {
  if (piece.size() == 1 && byte_id_[static_cast<unsigned char>(piece[0])] >= 0) {
    out.push_back(static_cast<uint32_t>(byte_id_[static_cast<unsigned char>(piece[0])]));
    return;
  }
  if (model_.whole_piece_first) {
    auto it = model_.ids.find(piece);
    if (it != model_.ids.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (piece.size() > PieceCache::kMaxPieceBytes) return merge_piece(piece, out);
  PieceCache& cache = piece_cache(serial_);
  auto it = cache.map.find(piece);
  if (it == cache.map.end()) {
    std::vector<uint32_t> ids;
    merge_piece(piece, ids);
    it = cache.map.emplace(std::string(piece), std::move(ids)).first;
  }
  out.insert(out.end(), it->second.begin(), it->second.end());
}

void BpeTokenizer::encode_ordinary(std::string_view text, std::vector<uint32_t>& out) const {
  std::string normalized;
  if (model_.normalizer == Normalizer::nfc && unicode::to_nfc(text, normalized)) text = normalized;
  for (size_t i = 0; i < text.size();) {
    const size_t end = next_piece(text, i, model_.pattern);
    encode_piece(text.substr(i, end - i), out);
    i = end;
  }
}

std::vector<uint32_t> BpeTokenizer::encode(std::string_view text) const {
  std::vector<uint32_t> out;
  out.reserve(text.size() / 3 + 16);
  size_t start = 0;
  if (!model_.added.empty()) {
    for (size_t i = 0; i < text.size(); ++i) {
      if (!added_starts_[static_cast<unsigned char>(text[i])]) continue;
      for (const auto& [content, id] : model_.added) {
        if (text.compare(i, content.size(), content) != 0) continue;
        encode_ordinary(text.substr(start, i - start), out);
        out.push_back(id);
        start = i + content.size();
        i = start - 1;
        break;
      }
    }
  }
  encode_ordinary(text.substr(start), out);
  return out;
}

std::string BpeTokenizer::decode(std::span<const uint32_t> ids) const {
  std::string s;
  for (uint32_t id : ids) {
    if (id < model_.tokens.size() && !model_.tokens[id].empty())
      s += model_.tokens[id];
    else
      s += "\xEF\xBF\xBD";  // U+FFFD: an id the model has but the tokenizer does not
  }
  return s;
}

// "DIR/x.vocab.json" -> DIR/x.tokenizer.json (or x.encoder.json + x.vocab.bpe, GPT-2's own
// names, or x.tokenizer.tiktoken); "DIR/vocab.json" -> DIR/tokenizer.json.
std::vector<std::string> BpeTokenizer::saved_names(const std::string& path) const {
  std::string prefix = fs::path(path).filename().string();
  if (prefix.ends_with("vocab.json"))
    prefix.resize(prefix.size() - std::string_view("vocab.json").size());
  else
    prefix = fs::path(path).stem().string() + ".";
  if (source_.format == "hf") return {prefix + "tokenizer.json"};
  if (source_.format == "gpt2") return {prefix + "encoder.json", prefix + "vocab.bpe"};
  return {prefix + "tokenizer.tiktoken"};
}

void BpeTokenizer::save(const std::string& path) const {
  const fs::path dir = fs::path(path).parent_path();
  const std::vector<std::string> names = saved_names(path);
  for (size_t i = 0; i < names.size(); ++i) {
    const fs::path dst = dir / names[i];
    std::error_code ec;
    if (fs::exists(dst) && fs::equivalent(source_.files[i], dst, ec)) continue;
    const std::string tmp = dst.string() + ".tmp";
    fs::copy_file(source_.files[i], tmp, fs::copy_options::overwrite_existing, ec);
    if (!ec) fs::rename(tmp, dst, ec);
    if (ec) {
      fs::remove(tmp);
      fail("cannot copy {} to {}: {}", source_.files[i], dst.string(), ec.message());
    }
  }
  nlohmann::json j{{"kind", "bpe"}, {"format", source_.format}, {"files", names}};
  // The pattern of a .tiktoken file comes from its name, which the copy no longer has.
  if (source_.format == "tiktoken") j["pattern"] = std::string(to_string(model_.pattern));
  write_file_atomic(path, j.dump() + "\n");
}

}  // namespace zt
