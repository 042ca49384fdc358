#include "parallel/checkpoint_format.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <regex>

#include "core/crc32c.h"
#include "core/fileio.h"
#include "model/transformer.h"

namespace zt {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kFormat = "zerotrain-checkpoint";
constexpr int kVersion = 1;
constexpr std::string_view kCrcKey = ",\n  \"meta_crc32c\": \"";

[[noreturn]] void corrupt(const fs::path& file, const std::string& problem) {
  throw CheckpointCorrupt(fmt::format("{}: {}", file.string(), problem));
}

nlohmann::ordered_json to_json(const CheckpointMeta& m) {
  using json = nlohmann::ordered_json;
  json units = json::array();
  for (const CkptUnit& u : m.units) {
    json params = json::array();
    for (const CkptParam& p : u.params)
      params.push_back({{"name", p.name}, {"shape", p.shape}, {"dtype", "f32"}, {"offset", p.offset}});
    units.push_back({{"name", u.name}, {"numel", u.numel}, {"params", params}});
  }
  json files = json::array();
  for (const CkptFile& f : m.files) {
    json segs = json::array();
    for (const CkptSegment& s : f.segments)
      segs.push_back({{"unit", s.unit}, {"tensor", s.tensor}, {"begin", s.begin}, {"count", s.count}, {"offset", s.offset}});
    files.push_back({{"name", f.name}, {"bytes", f.bytes}, {"crc32c", crc32c_hex(f.crc32c)}, {"segments", segs}});
  }
  json out;
  out["format"] = kFormat;
  out["version"] = kVersion;
  out["step"] = m.step;
  out["world_size"] = m.world_size;
  out["zero_stage"] = m.zero_stage;
  out["consumed_samples"] = m.consumed_samples;
  out["global_batch"] = m.global_batch;
  out["tensors"] = m.tensors;
  out["state"] = json(m.state);
  out["units"] = units;
  out["files"] = files;
  out["config"] = m.config_yaml;
  return out;
}

// An integer field in [lo, hi]; a float, a string or an out-of-range value is an error
// naming the key (a meta.json with a valid checksum may still have been edited by hand).
int64_t int_in(const json& j, const std::string& key, int64_t lo, int64_t hi) {
  if (!j.is_object() || !j.contains(key)) throw std::runtime_error(fmt::format("no `{}` key", key));
  const json& v = j.at(key);
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(hi)) || v.get<int64_t>() < lo ||
      v.get<int64_t>() > hi)
    throw std::runtime_error(fmt::format("`{}` is {}, expected an integer in [{}, {}]", key, v.dump(), lo, hi));
  return v.get<int64_t>();
}

const json& field(const json& j, const std::string& key, json::value_t type, const char* what) {
  if (!j.is_object() || !j.contains(key)) throw std::runtime_error(fmt::format("no `{}` key", key));
  const json& v = j.at(key);
  const bool ok = v.type() == type || (type == json::value_t::number_integer && v.is_number_integer());
  if (!ok) throw std::runtime_error(fmt::format("`{}` is {}, expected {}", key, v.dump().substr(0, 80), what));
  return v;
}

constexpr int64_t kMaxElems = int64_t(1) << 50;  // far above any model; keeps byte offsets in int64

CheckpointMeta from_json(const json& j) {
  if (!j.is_object() || j.value("format", "") != kFormat) throw std::runtime_error("not a zerotrain checkpoint (format key)");
  if (int_in(j, "version", 0, 1 << 20) != kVersion)
    throw std::runtime_error(fmt::format("format version {} (this zt reads {})", j.at("version").get<int>(), kVersion));
  using T = json::value_t;
  CheckpointMeta m;
  m.step = int_in(j, "step", 0, int64_t(1e12));
  m.world_size = static_cast<int>(int_in(j, "world_size", 1, 1 << 20));
  m.zero_stage = static_cast<int>(int_in(j, "zero_stage", 0, 3));
  m.consumed_samples = int_in(j, "consumed_samples", 0, kMaxElems);
  m.global_batch = int_in(j, "global_batch", 1, kMaxElems);
  for (const json& t : field(j, "tensors", T::array, "a list of names"))
    m.tensors.push_back(t.is_string() ? t.get<std::string>() : throw std::runtime_error("`tensors` holds a non-name"));
  m.state = field(j, "state", T::object, "an object");
  int_in(field(m.state, "optimizer", T::object, "an object"), "step_count", 0, int64_t(1e12));
  m.config_yaml = field(j, "config", T::string, "a string").get<std::string>();
  for (const json& u : field(j, "units", T::array, "a list")) {
    CkptUnit cu{field(u, "name", T::string, "a name").get<std::string>(), int_in(u, "numel", 0, kMaxElems), {}};
    for (const json& p : field(u, "params", T::array, "a list")) {
      Shape shape;
      for (const json& d : field(p, "shape", T::array, "a list of sizes")) {
        if (!d.is_number_integer() || d.get<int64_t>() < 0 || d.get<int64_t>() > kMaxElems)
          throw std::runtime_error(fmt::format("unit {}: a shape holds {}", cu.name, d.dump()));
        shape.push_back(d.get<int64_t>());
      }
      cu.params.push_back({field(p, "name", T::string, "a name").get<std::string>(), shape, int_in(p, "offset", 0, cu.numel)});
    }
    m.units.push_back(std::move(cu));
  }
  for (const json& f : field(j, "files", T::array, "a list")) {
    CkptFile cf{field(f, "name", T::string, "a name").get<std::string>(), int_in(f, "bytes", 0, kMaxElems * 4), 0, {}};
    const std::string crc = field(f, "crc32c", T::string, "8 hex digits").get<std::string>();
    if (crc.size() != 8 || crc.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
      throw std::runtime_error(fmt::format("{}: crc32c '{}' is not 8 hex digits", cf.name, crc));
    cf.crc32c = static_cast<uint32_t>(std::stoul(crc, nullptr, 16));
    for (const json& sg : field(f, "segments", T::array, "a list"))
      cf.segments.push_back({static_cast<int>(int_in(sg, "unit", 0, 1 << 30)), field(sg, "tensor", T::string, "a name").get<std::string>(),
                             int_in(sg, "begin", 0, kMaxElems), int_in(sg, "count", 0, kMaxElems),
                             int_in(sg, "offset", 0, kMaxElems * 4)});
    m.files.push_back(std::move(cf));
  }
  return m;
}

// Every (unit, tensor) is covered exactly by the files' segments, which lie inside their
// files; the file list matches the world size. Returns the first problem.
std::string structure_problem(const CheckpointMeta& m) {
  if (m.world_size < 1) return fmt::format("world_size {} is not positive", m.world_size);
  if (static_cast<int>(m.files.size()) != m.world_size)
    return fmt::format("claims world_size {} but lists {} shard files", m.world_size, m.files.size());
  if (m.tensors.empty() || m.tensors[0] != "params") return "the first saved tensor must be params";
  int64_t total_bytes = 0;
  for (int r = 0; r < m.world_size; ++r) {
    const CkptFile& f = m.files[r];
    if (f.name != shard_file_name(r, m.world_size))
      return fmt::format("file {} is named {}, expected {}", r, f.name, shard_file_name(r, m.world_size));
    if (f.bytes < 0 || __builtin_add_overflow(total_bytes, f.bytes, &total_bytes))
      return fmt::format("{}: {} bytes is not a file size", f.name, f.bytes);
    for (const CkptSegment& s : f.segments) {
      if (s.unit < 0 || s.unit >= static_cast<int>(m.units.size())) return fmt::format("{}: segment of unknown unit {}", f.name, s.unit);
      if (std::find(m.tensors.begin(), m.tensors.end(), s.tensor) == m.tensors.end())
        return fmt::format("{}: segment of unknown tensor {}", f.name, s.tensor);
      // Written so that no sum or product of recorded values can overflow.
      if (s.count < 0 || s.begin < 0 || s.offset < 0 || s.offset > f.bytes || s.count > (f.bytes - s.offset) / 4 ||
          s.begin > INT64_MAX - s.count)
        return fmt::format("{}: segment of {} {} lies outside the file", f.name, m.units[s.unit].name, s.tensor);
    }
  }
  for (size_t u = 0; u < m.units.size(); ++u)
    for (const std::string& t : m.tensors) {
      std::vector<std::pair<int64_t, int64_t>> ranges;
      for (const CkptFile& f : m.files)
        for (const CkptSegment& s : f.segments)
          if (s.unit == static_cast<int>(u) && s.tensor == t && s.count > 0) ranges.push_back({s.begin, s.count});
      std::sort(ranges.begin(), ranges.end());
      int64_t at = 0;
      for (auto [b, c] : ranges) {
        if (b != at) return fmt::format("{} {} is not covered exactly by the shard files (gap or overlap at {})", m.units[u].name, t, at);
        at = b + c;
      }
      if (at != m.units[u].numel)
        return fmt::format("{} {}: the shard files hold {} of {} elements", m.units[u].name, t, at, m.units[u].numel);
    }
  return "";
}

}  // namespace

int64_t CheckpointMeta::total_bytes() const {
  int64_t b = 0;
  for (const CkptFile& f : files) b += f.bytes;
  return b;
}

std::string checkpoint_name(int64_t step) { return fmt::format("step-{:08d}", step); }

std::string shard_file_name(int rank, int world) { return fmt::format("shard-{:05d}-of-{:05d}.bin", rank, world); }

std::vector<CkptSegment> shard_layout(const std::vector<CkptUnit>& units, const std::vector<std::string>& tensors,
                                      int rank, int world) {
  std::vector<CkptSegment> out;
  int64_t offset = 0;
  for (const std::string& t : tensors)
    for (size_t u = 0; u < units.size(); ++u) {
      const int64_t slice = (units[u].numel + world - 1) / world;
      const int64_t begin = std::min<int64_t>(rank * slice, units[u].numel);
      const int64_t count = std::min<int64_t>(begin + slice, units[u].numel) - begin;
      out.push_back({static_cast<int>(u), t, begin, count, offset});
      offset += count * 4;
    }
  return out;
}

std::vector<CkptUnit> describe_units(const Transformer& model) {
  std::vector<CkptUnit> out;
  for (const Unit* u : model.units()) {
    CkptUnit cu{u->name(), u->numel(), {}};
    for (const ParamSpec& p : u->params()) cu.params.push_back({p.name, p.shape, p.offset});
    out.push_back(std::move(cu));
  }
  return out;
}

void write_meta(const fs::path& dir, const CheckpointMeta& meta) {
  std::string text = to_json(meta).dump(2);
  // "...\n}" -> "...,\n  \"meta_crc32c\": \"xxxxxxxx\"\n}\n", the checksum over all before it.
  ZT_CHECK(text.size() > 2 && text.back() == '}', "meta json");
  text.resize(text.size() - 2);
  text += kCrcKey;
  text += crc32c_hex(crc32c(text.data(), text.size())) + "\"\n}\n";
  write_file_atomic(dir / kMetaFile, text);
}

CheckpointMeta read_meta(const fs::path& dir) {
  const fs::path path = dir / kMetaFile;
  if (!fs::is_directory(dir)) corrupt(dir, "checkpoint directory is missing");
  if (!fs::exists(path)) corrupt(path, "missing");
  std::string text;
  try {
    text = read_text_file(path);
  } catch (const Error& e) {
    corrupt(path, e.what());
  }
  const size_t at = text.rfind(kCrcKey);
  if (at == std::string::npos || text.size() < at + kCrcKey.size() + 8)
    corrupt(path, "no meta_crc32c at its end (truncated or not written by zt)");
  const std::string recorded = text.substr(at + kCrcKey.size(), 8);
  const std::string actual = crc32c_hex(crc32c(text.data(), at + kCrcKey.size()));
  if (recorded != actual) corrupt(path, fmt::format("checksum mismatch (recorded {}, computed {})", recorded, actual));
  CheckpointMeta meta;
  try {
    meta = from_json(json::parse(text));
  } catch (const std::exception& e) {
    corrupt(path, fmt::format("unreadable: {}", e.what()));
  }
  if (std::string p = structure_problem(meta); !p.empty()) corrupt(path, p);
  return meta;
}

std::string verify_shard(const fs::path& dir, const CkptFile& file) {
  const fs::path path = dir / file.name;
  int fd = -1;
  int64_t size = 0;
  try {
    fd = open_regular_file(path, &size);
  } catch (const Error& e) {
    return e.what();
  }
  if (size != file.bytes) {
    ::close(fd);
    return fmt::format("{}: {} bytes, meta.json records {} (truncated?)", path.string(), size, file.bytes);
  }
  std::vector<char> buf(size_t{8} << 20);
  uint32_t crc = 0;
  int64_t total = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return fmt::format("{}: read failed ({})", path.string(), std::strerror(errno));
    }
    if (n == 0) break;
    crc = crc32c(buf.data(), static_cast<size_t>(n), crc);
    total += n;
  }
  ::close(fd);
  if (total != file.bytes) return fmt::format("{}: {} bytes, meta.json records {} (truncated?)", path.string(), total, file.bytes);
  if (crc != file.crc32c)
    return fmt::format("{}: checksum mismatch (crc32c {}, meta.json records {})", path.string(), crc32c_hex(crc),
                       crc32c_hex(file.crc32c));
  return "";
}

void check_same_model(const CheckpointMeta& meta, const std::vector<CkptUnit>& model, const fs::path& dir) {
  auto refuse = [&](const std::string& what) {
    fail("checkpoint {} holds another model: {}", dir.string(), what);
  };
  for (size_t u = 0; u < std::max(meta.units.size(), model.size()); ++u) {
    if (u >= meta.units.size()) refuse(fmt::format("it has no unit {} (this model's {})", u, model[u].name));
    if (u >= model.size()) refuse(fmt::format("it has a unit {} that this model lacks", meta.units[u].name));
    const CkptUnit &a = meta.units[u], &b = model[u];
    for (size_t i = 0; i < std::max(a.params.size(), b.params.size()); ++i) {
      if (i >= a.params.size()) refuse(fmt::format("tensor {} {} is missing from it", b.params[i].name, shape_str(b.params[i].shape)));
      if (i >= b.params.size()) refuse(fmt::format("its tensor {} {} is not in this model", a.params[i].name, shape_str(a.params[i].shape)));
      const CkptParam &p = a.params[i], &q = b.params[i];
      if (p.name != q.name) refuse(fmt::format("tensor {} where this model has {}", p.name, q.name));
      if (p.shape != q.shape)
        refuse(fmt::format("tensor {} has shape {} in the checkpoint, {} in this model", p.name, shape_str(p.shape), shape_str(q.shape)));
    }
    if (a.numel != b.numel) refuse(fmt::format("unit {} has {} elements, this model's {}", a.name, a.numel, b.numel));
  }
}

CheckpointReader::CheckpointReader(fs::path dir, const CheckpointMeta& meta) : dir_(std::move(dir)), meta_(meta) {
  for (const CkptFile& f : meta.files) {
    const fs::path path = dir_ / f.name;
    int64_t size = 0;
    const int fd = open_regular_file(path, &size);
    fds_.push_back(fd);
    if (size != f.bytes) fail("{}: {} bytes, meta.json records {} (changed since it was verified?)", path.string(), size, f.bytes);
  }
}

CheckpointReader::~CheckpointReader() {
  for (int fd : fds_) ::close(fd);
}

void CheckpointReader::read(int unit, const std::string& tensor, int64_t begin, int64_t count, float* dst) {
  const int64_t numel = meta_.units.at(unit).numel;
  const int64_t end = begin + count;
  if (end > numel) std::fill(dst + std::max<int64_t>(0, numel - begin), dst + count, 0.f);
  for (size_t f = 0; f < meta_.files.size(); ++f)
    for (const CkptSegment& s : meta_.files[f].segments) {
      if (s.unit != unit || s.tensor != tensor) continue;
      const int64_t lo = std::max(begin, s.begin), hi = std::min(end, s.begin + s.count);
      if (lo >= hi) continue;
      read_exact(fds_[f], dst + (lo - begin), static_cast<size_t>(hi - lo) * 4, s.offset + (lo - s.begin) * 4,
                 dir_ / meta_.files[f].name);
      bytes_read_ += (hi - lo) * 4;
    }
}

std::vector<CheckpointEntry> list_checkpoints(const fs::path& root) {
  std::vector<CheckpointEntry> out;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  static const std::regex name("step-([0-9]{8,})");
  for (const auto& e : fs::directory_iterator(root, ec)) {
    std::smatch m;
    const std::string n = e.path().filename().string();
    if (e.is_directory() && std::regex_match(n, m, name) && fs::exists(e.path() / kMetaFile))
      out.push_back({std::stoll(m[1].str()), e.path()});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.step > b.step; });
  return out;
}

std::optional<fs::path> read_latest(const fs::path& root) {
  const fs::path p = root / kLatestFile;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(p, ec))) return std::nullopt;
  std::string name;
  try {
    name = read_text_file(p);
  } catch (const Error& e) {
    throw CheckpointCorrupt(e.what());
  }
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  // Only a checkpoint directory beside the file: never a path elsewhere (`../..`, /abs),
  // which would resume another run's state.
  static const std::regex valid("step-[0-9]{8,}");
  if (!std::regex_match(name, valid))
    corrupt(p, fmt::format("names '{}', not a checkpoint directory (step-NNNNNNNN) beside it", name.substr(0, 64)));
  const fs::path dir = root / name;
  if (!fs::is_directory(dir, ec)) corrupt(p, fmt::format("names {}, which does not exist", name));
  if (!fs::exists(dir / kMetaFile, ec)) corrupt(p, fmt::format("names {}, which has no {} (an interrupted save?)", name, kMetaFile));
  return dir;
}

void write_latest(const fs::path& root, const std::string& name) { write_file_atomic(root / kLatestFile, name + "\n"); }

fs::path resolve_checkpoint_path(const fs::path& path) {
  if (fs::exists(path / kMetaFile)) return path;
  for (const fs::path& root : {path, path / "checkpoints"})
    if (auto latest = read_latest(root)) return *latest;
  if (!fs::exists(path)) fail("{}: no such checkpoint or run directory", path.string());
  fail("{}: not a checkpoint (no meta.json) and no `latest` under it or under its checkpoints/", path.string());
}

}  // namespace zt
