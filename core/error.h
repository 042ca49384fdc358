// Error type raised where input enters the program (config, files, CLI). It carries the
// context a user needs to fix the input: which key, which file, which value.
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace zt {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// An error already reported, by this process or by another rank that raised the same one:
// the command exits with failure without printing it again.
class ReportedError : public Error {
 public:
  using Error::Error;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> fmt, Args&&... args) {
  throw Error(fmt::format(fmt, std::forward<Args>(args)...));
}

// Internal invariant: a violation is a bug in zerotrain, not bad input.
#define ZT_CHECK(cond, ...)                                                            \
  do {                                                                                 \
    if (!(cond))                                                                       \
      throw ::zt::Error(fmt::format("internal check failed at {}:{}: {} ({})", __FILE__, \
                                    __LINE__, #cond, fmt::format(__VA_ARGS__)));       \
  } while (0)

}  // namespace zt
