// A small argument parser for the subcommands: positionals, `--flag value` / `--flag=value`
// options, repeatable options (--set), and boolean switches. Unknown flags are errors.
#pragma once
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace zt {

class CliArgs {
 public:
  // `options` take a value; `switches` do not; `repeated` options may appear many times.
  CliArgs(const std::string& command, const std::vector<std::string>& args,
          const std::set<std::string>& options, const std::set<std::string>& switches = {},
          const std::set<std::string>& repeated = {});

  const std::vector<std::string>& positionals() const { return positionals_; }
  // The positional at `i`, or an error naming `what` when absent.
  const std::string& positional(size_t i, const std::string& what) const;
  void expect_positionals(size_t min, size_t max) const;
  // A positional that reads as a config setting ("model.n_layer=4") is an error pointing at
  // --set, for the commands that take one.
  void reject_bare_settings() const;

  std::optional<std::string> get(const std::string& name) const;
  std::string get_or(const std::string& name, const std::string& fallback) const;
  int64_t get_int(const std::string& name, int64_t fallback) const;
  double get_double(const std::string& name, double fallback) const;  // finite only
  // The same, refusing values outside [lo, hi] with an error naming the flag.
  int64_t get_int(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) const;
  double get_double(const std::string& name, double fallback, double lo, double hi) const;
  bool has(const std::string& name) const;  // switches
  std::vector<std::string> all(const std::string& name) const;  // repeated options

 private:
  std::string command_;
  std::vector<std::string> positionals_;
  std::map<std::string, std::vector<std::string>> values_;
  std::set<std::string> switches_on_;
};

}  // namespace zt
