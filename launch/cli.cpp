#include <cmath>
#include "launch/cli.h"

#include <charconv>

#include "core/error.h"

namespace zt {

CliArgs::CliArgs(const std::string& command, const std::vector<std::string>& args,
                 const std::set<std::string>& options, const std::set<std::string>& switches,
                 const std::set<std::string>& repeated)
    : command_(command) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() < 2 || a[0] != '-' || a == "--") {
      if (a != "--") positionals_.push_back(a);
      continue;
    }
    std::string name = a.substr(a.rfind("--", 0) == 0 ? 2 : 1);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (switches.count(name)) {
      if (inline_value) fail("zt {}: --{} takes no value", command_, name);
      switches_on_.insert(name);
    } else if (options.count(name) || repeated.count(name)) {
      std::string value;
      if (inline_value) {
        value = *inline_value;
      } else {
        if (i + 1 >= args.size()) fail("zt {}: --{} needs a value", command_, name);
        value = args[++i];
      }
      auto& slot = values_[name];
      if (!repeated.count(name) && !slot.empty()) fail("zt {}: --{} given twice", command_, name);
      slot.push_back(value);
    } else {
      fail("zt {}: unknown option '{}'", command_, a);
    }
  }
}

const std::string& CliArgs::positional(size_t i, const std::string& what) const {
  if (i >= positionals_.size()) fail("zt {}: missing {}", command_, what);
  return positionals_[i];
}

void CliArgs::expect_positionals(size_t min, size_t max) const {
  if (positionals_.size() < min) fail("zt {}: expected at least {} argument(s)", command_, min);
  if (positionals_.size() > max)
    fail("zt {}: unexpected argument '{}'", command_, positionals_[max]);
}

void CliArgs::reject_bare_settings() const {
  for (const std::string& a : positionals_) {
    const auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    if (a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") < eq) continue;
    fail("zt {}: unexpected argument '{}'; to set a config key write --set {}", command_, a, a);
  }
}

std::optional<std::string> CliArgs::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::string CliArgs::get_or(const std::string& name, const std::string& fallback) const {
  return get(name).value_or(fallback);
}

int64_t CliArgs::get_int(const std::string& name, int64_t fallback) const {
  auto v = get(name);
  if (!v) return fallback;
  int64_t out = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || p != v->data() + v->size())
    fail("zt {}: --{} expects an integer, got '{}'", command_, name, *v);
  return out;
}

int64_t CliArgs::get_int(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) const {
  const int64_t v = get_int(name, fallback);
  if (v < lo || v > hi) fail("zt {}: --{} {} is outside [{}, {}]", command_, name, v, lo, hi);
  return v;
}

double CliArgs::get_double(const std::string& name, double fallback, double lo, double hi) const {
  const double v = get_double(name, fallback);
  if (v < lo || v > hi) fail("zt {}: --{} {} is outside [{}, {}]", command_, name, v, lo, hi);
  return v;
}

double CliArgs::get_double(const std::string& name, double fallback) const {
  auto v = get(name);
  if (!v) return fallback;
  try {
    size_t used = 0;
    double d = std::stod(*v, &used);
    if (used == v->size() && std::isfinite(d)) return d;
  } catch (const std::exception&) {
  }
  fail("zt {}: --{} expects a finite number, got '{}'", command_, name, *v);
}

bool CliArgs::has(const std::string& name) const { return switches_on_.count(name) > 0; }

std::vector<std::string> CliArgs::all(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

}  // namespace zt
