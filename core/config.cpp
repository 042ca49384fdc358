#include "core/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <type_traits>

#include <fmt/format.h>

#include "core/error.h"
#include "core/hf_config.h"

namespace zt {

// ---- enum names -----------------------------------------------------------------------------

namespace {

template <class E> struct EnumNames;
template <> struct EnumNames<ModelFamily> {
  static constexpr std::array<std::pair<ModelFamily, const char*>, 2> values{
      {{ModelFamily::gpt2, "gpt2"}, {ModelFamily::llama, "llama"}}};
};
template <> struct EnumNames<TokenizerKind> {
  static constexpr std::array<std::pair<TokenizerKind, const char*>, 4> values{
      {{TokenizerKind::char_level, "char"}, {TokenizerKind::byte, "byte"}, {TokenizerKind::none, "none"},
       {TokenizerKind::file, "file"}}};
};
template <> struct EnumNames<TokenFormat> {
  static constexpr std::array<std::pair<TokenFormat, const char*>, 3> values{
      {{TokenFormat::automatic, "auto"}, {TokenFormat::llmc, "llmc"}, {TokenFormat::nanogpt, "nanogpt"}}};
};
template <> struct EnumNames<OptimName> {
  static constexpr std::array<std::pair<OptimName, const char*>, 2> values{
      {{OptimName::adamw, "adamw"}, {OptimName::sgd, "sgd"}}};
};
template <> struct EnumNames<LrScheduleKind> {
  static constexpr std::array<std::pair<LrScheduleKind, const char*>, 3> values{
      {{LrScheduleKind::constant, "constant"}, {LrScheduleKind::cosine, "cosine"}, {LrScheduleKind::linear, "linear"}}};
};
template <> struct EnumNames<LogLevel> {
  static constexpr std::array<std::pair<LogLevel, const char*>, 3> values{
      {{LogLevel::debug, "debug"}, {LogLevel::info, "info"}, {LogLevel::warn, "warn"}}};
};

template <> struct EnumNames<CommBackend> {
  static constexpr std::array<std::pair<CommBackend, const char*>, 6> values{
      {{CommBackend::automatic, "auto"}, {CommBackend::mpi, "mpi"}, {CommBackend::gloo, "gloo"}, {CommBackend::single, "single"},
       {CommBackend::nccl, "nccl"}, {CommBackend::staged, "staged"}}};
};

template <> struct EnumNames<OnCorrupt> {
  static constexpr std::array<std::pair<OnCorrupt, const char*>, 2> values{
      {{OnCorrupt::error, "error"}, {OnCorrupt::previous, "previous"}}};
};

template <> struct EnumNames<ActivationCheckpointing> {
  static constexpr std::array<std::pair<ActivationCheckpointing, const char*>, 3> values{
      {{ActivationCheckpointing::none, "none"}, {ActivationCheckpointing::all, "all"},
       {ActivationCheckpointing::every_k, "every_k"}}};
};

template <> struct EnumNames<Precision> {
  static constexpr std::array<std::pair<Precision, const char*>, 3> values{
      {{Precision::fp32, "fp32"}, {Precision::bf16, "bf16"}, {Precision::fp16, "fp16"}}};
};

template <> struct EnumNames<RuntimeDevice> {
  static constexpr std::array<std::pair<RuntimeDevice, const char*>, 2> values{
      {{RuntimeDevice::cpu, "cpu"}, {RuntimeDevice::cuda, "cuda"}}};
};

template <class E> std::string_view enum_name(E v) {
  for (auto& [e, name] : EnumNames<E>::values)
    if (e == v) return name;
  return "?";
}

// Whether an enum value lies in a key's bounds (enum_up_to); unbounded keys take every value.
template <class E> bool enum_allowed(E e, const Bounds& b) {
  const double v = static_cast<double>(static_cast<int>(e));
  return v >= b.min && v <= b.max;
}

template <class E> std::string enum_choices(const Bounds& b = {}) {
  std::string s;
  for (auto& [e, name] : EnumNames<E>::values)
    if (enum_allowed(e, b)) s += (s.empty() ? "" : ", ") + std::string(name);
  return s;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// " (did you mean 'x'?)" when a known key is close to the unknown one.
std::string suggestion(const std::string& unknown, const std::vector<std::string>& known) {
  std::string best;
  size_t best_d = SIZE_MAX;
  const size_t limit = std::max<size_t>(2, unknown.size() / 3);
  for (const auto& k : known) {
    // The distance is at least the length gap: skip keys that cannot be suggested or win,
    // so a long unknown key costs no quadratic pass per known key.
    const size_t gap = unknown.size() > k.size() ? unknown.size() - k.size() : k.size() - unknown.size();
    if (gap > limit || gap >= best_d) continue;
    size_t d = edit_distance(unknown, k);
    if (d < best_d) best_d = d, best = k;
  }
  if (!best.empty() && best_d <= limit)
    return fmt::format(" (did you mean '{}'?)", best);
  // A known key put in the wrong section: "train.lr" -> "optim.lr".
  const auto leaf = [](std::string_view k) { return k.substr(k.rfind('.') + 1); };
  if (unknown.find('.') != std::string::npos)
    for (const auto& k : known)
      if (k.find('.') != std::string::npos && leaf(k) == leaf(unknown))
        return fmt::format(" (did you mean '{}'?)", k);
  return "";
}

// ---- collecting key paths -------------------------------------------------------------------

struct KeysVisitor {
  std::string prefix;
  std::vector<std::string>* keys;
  template <class T> void operator()(const char* key, T&, Bounds = {}) { keys->push_back(prefix + key); }
  void choices(const char* key, std::vector<std::string>&, std::initializer_list<const char*>) {
    keys->push_back(prefix + key);
  }
  template <class S> void section(const char* key, S& s) {
    KeysVisitor sub{prefix + key + ".", keys};
    s.visit(sub);
  }
};

// ---- parsing --------------------------------------------------------------------------------

struct ParseContext {
  std::string source;                         // file name for messages
  std::set<std::string> overridden;           // key paths supplied by --set
  std::map<std::string, std::string> where;   // key path -> "file:line" or "--set key"
};

std::string locate(ParseContext& ctx, const YAML::Node& node, const std::string& path) {
  if (ctx.overridden.count(path)) return "--set " + path;
  const YAML::Mark m = node.Mark();
  if (m.line >= 0) return fmt::format("{}:{}", ctx.source, m.line + 1);
  return ctx.source;
}

// The name of a mapping key; a list or map used as a key is an input error, not a crash.
std::string key_name(ParseContext& ctx, const YAML::Node& key, const std::string& prefix) {
  if (key.IsScalar()) return key.Scalar();
  if (key.IsNull()) return "null";
  const std::string where = prefix.empty() ? std::string("the top level") : prefix.substr(0, prefix.size() - 1);
  fail("{}: {}: keys must be plain names, got a {}", locate(ctx, key, prefix), where,
       key.IsMap() ? "map" : "list");
}

class ParseVisitor {
 public:
  ParseVisitor(const YAML::Node& node, std::string prefix, ParseContext& ctx)
      : node_(node), prefix_(std::move(prefix)), ctx_(ctx) {}

  template <class T> void operator()(const char* key, T& field, Bounds b = {}) {
    known_.push_back(key);
    const YAML::Node n = lookup(key);
    if (!n) return;
    parse(n, prefix_ + key, field, b);
  }

  void choices(const char* key, std::vector<std::string>& field, std::initializer_list<const char*> allowed) {
    known_.push_back(key);
    const YAML::Node n = lookup(key);
    if (!n) return;
    const std::string path = prefix_ + key;
    std::string options;
    for (const char* a : allowed) options += (options.empty() ? "" : ", ") + std::string(a);
    if (n.IsNull()) {
      field.clear();
      return;
    }
    if (!n.IsSequence()) error(n, path, fmt::format("expected a list of {}, got {}", options, show(n)));
    field.clear();
    for (const auto& item : n) {
      if (!item.IsScalar()) error(item, path, fmt::format("expected a list of {}, got {}", options, show(item)));
      const std::string& s = item.Scalar();
      if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return s == a; }))
        error(item, path, fmt::format("each entry must be one of {}, got '{}'", options, s));
      field.push_back(s);
    }
  }

  template <class S> void section(const char* key, S& s) {
    known_.push_back(key);
    const YAML::Node n = lookup(key);
    if (!n || n.IsNull()) return;
    const std::string path = prefix_ + key;
    if (!n.IsMap()) error(n, path, fmt::format("expected a section of keys, got {}", show(n)));
    ParseVisitor sub(n, path + ".", ctx_);
    s.visit(sub);
    sub.reject_unknown_keys();
  }

  void reject_unknown_keys() {
    std::set<std::string> seen;
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      const std::string key = key_name(ctx_, it->first, prefix_);
      if (!seen.insert(key).second)
        fail("{}: duplicate key '{}'", locate(ctx_, it->first, prefix_ + key), prefix_ + key);
      if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
      std::vector<std::string> all = config_keys();
      std::vector<std::string> sections;
      for (const auto& k : all) {
        auto dot = k.rfind('.');
        if (dot != std::string::npos) sections.push_back(k.substr(0, dot));
      }
      all.insert(all.end(), sections.begin(), sections.end());
      const std::string path = prefix_ + key;
      fail("{}: unknown key '{}'{}", locate(ctx_, it->first, path), path, suggestion(path, all));
    }
  }

 private:
  YAML::Node lookup(const char* key) {
    for (auto it = node_.begin(); it != node_.end(); ++it)
      if (key_name(ctx_, it->first, prefix_) == key) {
        ctx_.where[prefix_ + key] = locate(ctx_, it->first, prefix_ + key);
        return it->second;
      }
    return YAML::Node(YAML::NodeType::Undefined);
  }

  static std::string show(const YAML::Node& n) {
    if (n.IsMap()) return "a section (map)";
    if (n.IsSequence()) return "a list";
    if (n.IsNull()) return "nothing (null)";
    return "'" + n.Scalar() + "'";
  }

  [[noreturn]] void error(const YAML::Node& n, const std::string& path, const std::string& msg) {
    fail("{}: {}: {}", locate(ctx_, n, path), path, msg);
  }

  const std::string& scalar(const YAML::Node& n, const std::string& path, const char* expected) {
    if (!n.IsScalar()) error(n, path, fmt::format("expected {}, got {}", expected, show(n)));
    return n.Scalar();
  }

  void check_bounds(const YAML::Node& n, const std::string& path, double v, const Bounds& b) {
    const bool low = b.min_open ? v <= b.min : v < b.min;
    const bool high = b.max_open ? v >= b.max : v > b.max;
    if (!low && !high) return;
    std::string want;
    if (std::isfinite(b.min) && b.max <= 100)  // a short range reads best whole; else the violated side
      want = fmt::format("be in {}{}, {}{}", b.min_open ? "(" : "[", b.min, b.max, b.max_open ? ")" : "]");
    else if (low)
      want = fmt::format("be {} {}", b.min_open ? ">" : ">=", b.min);
    else
      want = fmt::format("be {} {}", b.max_open ? "<" : "<=", b.max);
    error(n, path, fmt::format("must {}, got {}", want, n.Scalar()));
  }

  void parse(const YAML::Node& n, const std::string& path, std::string& out, const Bounds&) {
    out = n.IsNull() ? "" : scalar(n, path, "a string");
  }
  // A path or a list of paths; null or an empty string is the empty list.
  void parse(const YAML::Node& n, const std::string& path, std::vector<std::string>& out, const Bounds&) {
    out.clear();
    if (n.IsSequence()) {
      for (size_t i = 0; i < n.size(); ++i) {
        const std::string item = fmt::format("{}[{}]", path, i);
        const std::string& s = scalar(n[i], item, "a path");
        if (s.empty()) error(n[i], item, "expected a path, got an empty string");
        out.push_back(s);
      }
      if (out.empty()) error(n, path, "expected a path or a list of paths, got an empty list");
      return;
    }
    const std::string s = n.IsNull() ? "" : scalar(n, path, "a path or a list of paths");
    if (!s.empty()) out.push_back(s);
  }

  template <class I>
  I parse_integer(const YAML::Node& n, const std::string& path, const Bounds& b) {
    const std::string& s = scalar(n, path, "an integer");
    I v{};
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || s.empty())
      error(n, path, fmt::format("expected {}, got '{}'",
                                 std::is_signed_v<I> ? "an integer" : "a non-negative integer", s));
    check_bounds(n, path, static_cast<double>(v), b);
    return v;
  }
  void parse(const YAML::Node& n, const std::string& path, int64_t& out, const Bounds& b) {
    out = parse_integer<int64_t>(n, path, b);
  }
  void parse(const YAML::Node& n, const std::string& path, uint64_t& out, const Bounds& b) {
    out = parse_integer<uint64_t>(n, path, b);
  }

  void parse(const YAML::Node& n, const std::string& path, double& out, const Bounds& b) {
    const std::string& s = scalar(n, path, "a number");
    char* end = nullptr;
    double v = s.empty() ? NAN : std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v))
      error(n, path, fmt::format("expected a number, got '{}'", s));
    check_bounds(n, path, v, b);
    out = v;
  }

  void parse(const YAML::Node& n, const std::string& path, bool& out, const Bounds&) {
    std::string s = scalar(n, path, "true or false");
    std::transform(s.begin(), s.end(), s.begin(), ::tolower);
    if (s == "true" || s == "yes" || s == "on") out = true;
    else if (s == "false" || s == "no" || s == "off") out = false;
    else error(n, path, fmt::format("expected true or false, got '{}'", n.Scalar()));
  }

  void parse(const YAML::Node& n, const std::string& path, std::optional<bool>& out, const Bounds& b) {
    if (n.IsNull()) {
      out.reset();
      return;
    }
    bool v;
    parse(n, path, v, b);
    out = v;
  }

  void parse(const YAML::Node& n, const std::string& path, std::array<double, 2>& out, const Bounds& b) {
    if (!n.IsSequence() || n.size() != 2) error(n, path, fmt::format("expected a list of two numbers, got {}", show(n)));
    for (size_t i = 0; i < 2; ++i) parse(n[i], path, out[i], b);
  }

  template <class E, class = decltype(EnumNames<E>::values)>
  void parse(const YAML::Node& n, const std::string& path, E& out, const Bounds& b) {
    const std::string& s = scalar(n, path, "a name");
    for (auto& [e, name] : EnumNames<E>::values)
      if (s == name && enum_allowed(e, b)) {
        out = e;
        return;
      }
    error(n, path, fmt::format("must be one of {}, got '{}'", enum_choices<E>(b), s));
  }

  YAML::Node node_;
  std::string prefix_;
  ParseContext& ctx_;
  std::vector<std::string> known_;
};

// ---- dumping --------------------------------------------------------------------------------

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

// One path as a quoted scalar (as configs write it), several as a flow list.
std::string path_list(const std::vector<std::string>& paths) {
  if (paths.size() == 1) return quote(paths[0]);
  std::string s;
  for (const auto& p : paths) s += (s.empty() ? "" : ", ") + quote(p);
  return paths.empty() ? quote("") : "[" + s + "]";
}

struct DumpVisitor {
  std::string indent;
  std::string* out;
  void line(const char* key, const std::string& value) { *out += indent + key + ": " + value + "\n"; }
  void operator()(const char* key, const std::string& v, Bounds = {}) { line(key, quote(v)); }
  void operator()(const char* key, const std::vector<std::string>& v, Bounds = {}) { line(key, path_list(v)); }
  void operator()(const char* key, int64_t v, Bounds = {}) { line(key, std::to_string(v)); }
  void operator()(const char* key, uint64_t v, Bounds = {}) { line(key, std::to_string(v)); }
  void operator()(const char* key, double v, Bounds = {}) { line(key, fmt::format("{}", v)); }
  void operator()(const char* key, bool v, Bounds = {}) { line(key, v ? "true" : "false"); }
  void operator()(const char* key, const std::optional<bool>& v, Bounds = {}) {
    line(key, v ? (*v ? "true" : "false") : "null");
  }
  void operator()(const char* key, const std::array<double, 2>& v, Bounds = {}) {
    line(key, fmt::format("[{}, {}]", v[0], v[1]));
  }
  template <class E, class = decltype(EnumNames<E>::values)>
  void operator()(const char* key, E v, Bounds = {}) { line(key, std::string(enum_name(v))); }
  void choices(const char* key, const std::vector<std::string>& v, std::initializer_list<const char*>) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    line(key, "[" + s + "]");
  }
  template <class S> void section(const char* key, S& s) {
    *out += indent + key + ":\n";
    DumpVisitor sub{indent + "  ", out};
    s.visit(sub);
  }
};

// ---- describing keys (for help) ---------------------------------------------------------

struct DescribeVisitor {
  std::string prefix;
  std::vector<ConfigKeyInfo>* out;
  void add(const char* key, std::string type, std::string value, const Bounds& b = {}, std::string choices = "") {
    std::string range;
    if (std::isfinite(b.min) && std::isfinite(b.max))
      range = fmt::format("{}{}, {}{}", b.min_open ? "(" : "[", b.min, b.max, b.max_open ? ")" : "]");
    else if (std::isfinite(b.min))
      range = fmt::format("{} {}", b.min_open ? ">" : ">=", b.min);
    else if (std::isfinite(b.max))
      range = fmt::format("{} {}", b.max_open ? "<" : "<=", b.max);
    out->push_back({prefix + key, std::move(type), std::move(value), std::move(choices), std::move(range)});
  }
  void operator()(const char* key, const std::string& v, Bounds = {}) { add(key, "string", quote(v)); }
  void operator()(const char* key, const std::vector<std::string>& v, Bounds = {}) {
    add(key, "path or list", path_list(v));
  }
  void operator()(const char* key, int64_t v, Bounds b = {}) { add(key, "int", std::to_string(v), b); }
  void operator()(const char* key, uint64_t v, Bounds b = {}) { add(key, "uint", std::to_string(v), b); }
  void operator()(const char* key, double v, Bounds b = {}) { add(key, "float", fmt::format("{}", v), b); }
  void operator()(const char* key, bool v, Bounds = {}) { add(key, "bool", v ? "true" : "false"); }
  void operator()(const char* key, const std::optional<bool>& v, Bounds = {}) {
    add(key, "bool or null", v ? (*v ? "true" : "false") : "null");
  }
  void operator()(const char* key, const std::array<double, 2>& v, Bounds b = {}) {
    add(key, "[float, float]", fmt::format("[{}, {}]", v[0], v[1]), b);
  }
  template <class E, class = decltype(EnumNames<E>::values)>
  void operator()(const char* key, E v, Bounds b = {}) {
    add(key, "enum", std::string(enum_name(v)), {}, enum_choices<E>(b));
  }
  void choices(const char* key, const std::vector<std::string>& v, std::initializer_list<const char*> allowed) {
    std::string value, options;
    for (const auto& x : v) value += (value.empty() ? "" : ", ") + x;
    for (const char* a : allowed) options += (options.empty() ? "" : ", ") + std::string(a);
    add(key, "list", "[" + value + "]", {}, options);
  }
  template <class S> void section(const char* key, S& s) {
    DescribeVisitor sub{prefix + key + ".", out};
    s.visit(sub);
  }
};

// ---- overrides, validation ------------------------------------------------------------------

void apply_override(YAML::Node& root, const std::string& spec, ParseContext& ctx) {
  const auto eq = spec.find('=');
  if (eq == std::string::npos || eq == 0) fail("--set {}: expected key=value (e.g. --set model.n_layer=4)", spec);
  const auto trim = [](std::string s) {
    const auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  };
  const std::string path = trim(spec.substr(0, eq)), value = spec.substr(eq + 1);
  if (path.empty()) fail("--set {}: expected key=value (e.g. --set model.n_layer=4)", spec);
  const std::vector<std::string> keys = config_keys();
  if (std::find(keys.begin(), keys.end(), path) == keys.end()) {
    for (const auto& k : keys)
      if (k.rfind(path + ".", 0) == 0)
        fail("--set {}: '{}' is a section; set one of its keys, e.g. --set {}=...", path, path, k);
    fail("--set {}: unknown key '{}'{}", path, path, suggestion(path, keys));
  }
  YAML::Node parsed;
  try {
    parsed = YAML::Load(value);
  } catch (const YAML::Exception& e) {
    fail("--set {}: cannot read value '{}': {}", path, value, e.msg);
  }
  YAML::Node cur = root;
  std::string::size_type start = 0, dot;
  while ((dot = path.find('.', start)) != std::string::npos) {
    const std::string seg = path.substr(start, dot - start);
    if (!cur[seg] || !cur[seg].IsMap()) cur[seg] = YAML::Node(YAML::NodeType::Map);
    YAML::Node next = cur[seg];
    cur.reset(next);
    start = dot + 1;
  }
  cur[path.substr(start)] = parsed;
  ctx.overridden.insert(path);
}

// Where the first of `paths` that the input set was given; the file alone if none was.
std::string where(ParseContext& ctx, std::initializer_list<std::string_view> paths) {
  for (std::string_view p : paths) {
    auto it = ctx.where.find(std::string(p));
    if (it != ctx.where.end()) return it->second;
  }
  return ctx.source;
}

// model.init_from naming a Hugging Face model directory: its config.json fills the model keys
// (and data.tokenizer when unset), and the checks below then point at its fields.
void fill_from_init_dir(Config& c, ParseContext& ctx) {
  const std::string& dir = c.model.init_from;
  auto set_at = [&](const std::string& key) -> std::optional<std::string> {
    auto it = ctx.where.find(key);
    if (it == ctx.where.end()) return std::nullopt;
    return it->second;
  };
  if (is_hf_model_dir(dir)) {
    for (auto& [key, from] : fill_from_hf_config(c, dir, set_at)) ctx.where[key] = from;
    return;
  }
  // A missing directory matters only when its config.json was to fill keys: a saved run's
  // config names every key, so tools still read it after the directory is gone.
  std::error_code ec;
  if (dir.empty() || std::filesystem::exists(dir, ec) || ec || dir.ends_with(".safetensors")) return;
  for (const std::string& key : hf_filled_keys())
    if (!set_at(key))
      fail("{}: model.init_from: {} not found (a .safetensors file, or a Hugging Face model directory whose "
           "config.json fills {} and the other model keys this config leaves unset)",
           where(ctx, {"model.init_from"}), dir, key);
}

void resolve_and_validate(Config& c, ParseContext& ctx) {
  // Cross-field errors point at the first of the keys involved that the input set.
  auto bad = [&](std::initializer_list<std::string_view> paths, const std::string& msg) {
    fail("{}: {}", where(ctx, paths), msg);
  };
  if (!std::regex_match(c.run.name, std::regex("[A-Za-z0-9._-]+")))
    bad({"run.name"}, fmt::format("run.name: '{}' must be letters, digits, '.', '_' or '-' (it names a directory)", c.run.name));
  if (c.run.out_dir.empty())
    bad({"run.out_dir"}, "run.out_dir is empty; name a directory (`.` for the current one)");
  if (c.data.train.empty())
    bad({"data.train"}, "data.train is required (a text file, or token files with data.tokenizer: none: a file, a "
                        "directory of shards, a glob or a list)");
  for (const auto& [key, paths] : {std::pair{"data.train", &c.data.train}, std::pair{"data.val", &c.data.val}})
    if (paths->size() > 1 && c.data.tokenizer_kind() != TokenizerKind::none)
      bad({key}, fmt::format("{}: a list of {} files is read as token shards, which needs data.tokenizer: none (got "
                             "'{}'); turn text into shards with `zt data prepare`", key, paths->size(), c.data.tokenizer));
  // A tokenizer path names a file; a bare word that is not a kind is a typo or a model name.
  if (c.data.tokenizer_kind() == TokenizerKind::file &&
      c.data.tokenizer.find_first_of("/.") == std::string::npos)
    bad({"data.tokenizer"}, fmt::format("data.tokenizer: must be one of char, byte, none or the path of a tokenizer "
                                        "file (tokenizer.json, GPT-2 vocab.json with merges.txt, .tiktoken), got '{}'",
                                        c.data.tokenizer));
  if (c.data.format != TokenFormat::automatic && c.data.tokenizer_kind() != TokenizerKind::none)
    bad({"data.format"}, fmt::format("data.format: {} describes token files, which need data.tokenizer: none (got '{}')",
                                     to_string(c.data.format), c.data.tokenizer));

#ifndef ZT_WITH_NCCL
  if (c.parallel.backend == CommBackend::nccl)
    bad({"parallel.backend"}, "parallel.backend: nccl needs a zt built with the CUDA backend and NCCL (this one has "
#ifdef ZT_WITH_CUDA
                              "CUDA but no nccl.h was found at build time"
#else
                              "no CUDA backend"
#endif
                              "); use staged (device tensors through MPI or Gloo) or auto");
#endif

  ModelConfig& m = c.model;
  if (m.n_kv_head == 0) m.n_kv_head = m.n_head;
  if (m.n_head % m.n_kv_head != 0)
    bad({"model.n_kv_head", "model.n_head"}, fmt::format("model.n_kv_head ({}) must divide model.n_head ({})", m.n_kv_head, m.n_head));
  if (m.d_model % m.n_head != 0)
    bad({"model.d_model", "model.n_head"}, fmt::format("model.d_model ({}) must be divisible by model.n_head ({})", m.d_model, m.n_head));
  if (m.family == ModelFamily::llama && (m.d_model / m.n_head) % 2 != 0)
    bad({"model.d_model", "model.n_head", "model.family"}, fmt::format("llama uses RoPE, which needs an even head dim; model.d_model / model.n_head = {}",
                                     m.d_model / m.n_head));
  if (m.d_ff == 0)
    m.d_ff = m.family == ModelFamily::gpt2 ? 4 * m.d_model : 64 * ((8 * m.d_model / 3 + 63) / 64);
  if (m.max_seq_len == 0) m.max_seq_len = c.data.seq_len;
  if (m.max_seq_len < c.data.seq_len)
    bad({"model.max_seq_len", "data.seq_len"}, fmt::format("model.max_seq_len ({}) must be >= data.seq_len ({})", m.max_seq_len, c.data.seq_len));
  if (!m.tie_embeddings) m.tie_embeddings = m.family == ModelFamily::gpt2;
  if (!m.attn_bias) m.attn_bias = m.family == ModelFamily::gpt2;
  if (m.family == ModelFamily::gpt2 && !*m.attn_bias)
    bad({"model.attn_bias", "model.family"}, "model.attn_bias: the gpt2 family always has biases; attn_bias: false applies to llama only");
  if (m.worker_interval == 0 && m.worker_conv_width != 0)
    bad({"model.worker_conv_width", "model.worker_interval"},
        fmt::format("model.worker_conv_width ({}) applies only to a WorkerTransformer; set model.worker_interval > 0",
                    m.worker_conv_width));
  if (m.worker_interval > 0) {
    if (c.data.seq_len % m.worker_interval != 0)
      bad({"model.worker_interval", "data.seq_len"},
          fmt::format("model.worker_interval ({}) must divide data.seq_len ({}): every training sequence ends on a worker",
                      m.worker_interval, c.data.seq_len));
    if (m.worker_conv_width == 0) m.worker_conv_width = m.worker_interval;
  }
  if (m.moe.n_experts > 0) {
    if (m.family != ModelFamily::llama)
      bad({"model.moe.n_experts", "model.family"}, "model.moe: Mixture of Experts needs model.family: llama (SwiGLU experts)");
    if (m.worker_interval > 0)
      bad({"model.moe.n_experts", "model.worker_interval"}, "model.moe does not combine with model.worker_interval");
    if (m.moe.top_k > m.moe.n_experts)
      bad({"model.moe.top_k", "model.moe.n_experts"},
          fmt::format("model.moe.top_k ({}) must be <= model.moe.n_experts ({})", m.moe.top_k, m.moe.n_experts));
  }
  // MoE routes tokens on the host (expert offsets, the aux loss): a device run would wait
  // on the GPU several times per block.
  if (c.runtime.device == RuntimeDevice::cuda && m.moe.n_experts > 0)
    bad({"runtime.device", "model.moe.n_experts"},
        "runtime.device: cuda does not train Mixture of Experts models yet (model.moe routes on the host)");
  if (c.precision.loss_scale != "dynamic") {
    char* end = nullptr;
    const double v = std::strtod(c.precision.loss_scale.c_str(), &end);
    if (c.precision.loss_scale.empty() || *end != '\0' || !(v > 0) || !std::isfinite(v))
      bad({"precision.loss_scale"}, fmt::format("precision.loss_scale must be dynamic or a positive number, not '{}'",
                                                c.precision.loss_scale));
  }
  if (c.checkpoint.resume.empty())
    bad({"checkpoint.resume"}, "checkpoint.resume must be auto, none or a checkpoint directory");
  if (c.optim.schedule.min_lr > c.optim.lr)
    bad({"optim.schedule.min_lr", "optim.lr"}, fmt::format("optim.schedule.min_lr ({}) must be <= optim.lr ({})", c.optim.schedule.min_lr, c.optim.lr));
}

}  // namespace

std::string_view to_string(ModelFamily v) { return enum_name(v); }
std::string_view to_string(TokenizerKind v) { return enum_name(v); }
std::string_view to_string(TokenFormat v) { return enum_name(v); }
std::string_view to_string(OptimName v) { return enum_name(v); }
std::string_view to_string(LrScheduleKind v) { return enum_name(v); }
std::string_view to_string(LogLevel v) { return enum_name(v); }
std::string_view to_string(CommBackend v) { return enum_name(v); }
std::string_view to_string(OnCorrupt v) { return enum_name(v); }
std::string_view to_string(ActivationCheckpointing v) { return enum_name(v); }
std::string_view to_string(Precision v) { return enum_name(v); }
std::string_view to_string(RuntimeDevice v) { return enum_name(v); }

std::vector<std::string> config_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> k;
    Config c;
    KeysVisitor v{"", &k};
    c.visit(v);
    return k;
  }();
  return keys;
}

Config parse_config(const std::string& yaml_text, const std::string& source_name,
                    const std::vector<std::string>& overrides) {
  ParseContext ctx;
  ctx.source = source_name;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    fail("{}:{}: YAML syntax error: {}", source_name, e.mark.line + 1, e.msg);
  }
  if (root.IsNull() && overrides.empty()) fail("{}: the config is empty", source_name);
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) fail("{}: the top level must be a map of sections (run, model, data, ...)", source_name);
  for (const std::string& o : overrides) apply_override(root, o, ctx);

  Config c;
  ParseVisitor v(root, "", ctx);
  c.visit(v);
  v.reject_unknown_keys();
  fill_from_init_dir(c, ctx);
  resolve_and_validate(c, ctx);
  return c;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  if (!std::filesystem::is_regular_file(path)) fail("config file not found: {}", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read config file: {}", path);
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) fail("cannot read config file: {}", path);
  return parse_config(text, path, overrides);
}

std::vector<ConfigKeyInfo> describe_config_keys() {
  std::vector<ConfigKeyInfo> keys;
  Config defaults;
  DescribeVisitor v{"", &keys};
  defaults.visit(v);
  return keys;
}

std::string dump_config(const Config& config) {
  std::string out;
  DumpVisitor v{"", &out};
  const_cast<Config&>(config).visit(v);
  return out;
}

}  // namespace zt
