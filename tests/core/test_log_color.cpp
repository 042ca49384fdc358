// When log lines carry colour: a terminal by default; never under mpirun or Slurm (their ptys
// put escape codes into the job's logs), with NO_COLOR, or when stdout is not a terminal;
// ZT_COLOR and FORCE_COLOR override.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "core/error.h"
#include "core/log.h"

namespace zt {
namespace {

bool color(const std::map<std::string, std::string>& vars, bool tty) {
  return log::use_color(
      [&](const char* name) {
        auto it = vars.find(name);
        return it == vars.end() ? nullptr : it->second.c_str();
      },
      tty);
}

TEST(LogColor, ATerminalOnlyByDefault) {
  EXPECT_TRUE(color({}, true));
  EXPECT_FALSE(color({}, false));
}

TEST(LogColor, OffWithNoColorAndUnderLaunchers) {
  EXPECT_FALSE(color({{"NO_COLOR", "1"}}, true));
  EXPECT_FALSE(color({{"NO_COLOR", "no"}}, true));
  EXPECT_TRUE(color({{"NO_COLOR", ""}}, true));  // no-color.org: only a non-empty value counts
  for (const char* rank : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"}) {
    EXPECT_FALSE(color({{rank, "0"}}, true)) << rank;
    EXPECT_TRUE(color({{rank, "0"}, {"ZT_COLOR", "always"}}, true)) << rank;
    EXPECT_TRUE(color({{rank, "1"}, {"FORCE_COLOR", "1"}}, true)) << rank;
  }
}

TEST(LogColor, ZtColorDecidesFirst) {
  EXPECT_TRUE(color({{"ZT_COLOR", "always"}}, false));
  EXPECT_TRUE(color({{"ZT_COLOR", "always"}, {"NO_COLOR", "1"}}, false));
  EXPECT_FALSE(color({{"ZT_COLOR", "never"}, {"FORCE_COLOR", "1"}}, true));
  EXPECT_FALSE(color({{"ZT_COLOR", "auto"}, {"NO_COLOR", "1"}}, true));
  EXPECT_TRUE(color({{"ZT_COLOR", "auto"}}, true));
  EXPECT_TRUE(color({{"FORCE_COLOR", "1"}}, false));
  EXPECT_FALSE(color({{"FORCE_COLOR", "0"}}, false));
  try {
    color({{"ZT_COLOR", "sometimes"}}, true);
    FAIL() << "ZT_COLOR=sometimes accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ZT_COLOR=sometimes"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace zt
