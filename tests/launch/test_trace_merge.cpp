// `zt trace merge` on hand-made rank traces: merging, and files whose otherData is not what
// a rank writes refused naming the file and the key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "launch/commands.h"
#include "tests/support/errors.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::error_of;
using testing::TempDir;

json rank_trace(const json& rank, const json& world) {
  return {{"traceEvents", {{{"ph", "X"}, {"name", "forward"}, {"ts", 1.5}, {"dur", 2.0}, {"pid", rank}, {"tid", 1}}}},
          {"displayTimeUnit", "ms"},
          {"otherData", {{"rank", rank}, {"world_size", world}, {"start_step", 3}, {"end_step", 4}}}};
}

void write(const fs::path& path, const json& j) { std::ofstream(path) << j.dump(); }

TEST(TraceMerge, MergesEveryRank) {
  TempDir tmp;
  write(tmp.path() / "rank-00000.trace.json", rank_trace(0, 2));
  write(tmp.path() / "rank-00001.trace.json", rank_trace(1, 2));
  const fs::path out = tmp.path() / "merged.json";
  ASSERT_EQ(cmd_trace({"merge", tmp.str(), "-o", out.string()}), 0);
  std::ifstream in(out);
  const json m = json::parse(in);
  EXPECT_EQ(m["traceEvents"].size(), 2u);
  EXPECT_EQ(m["otherData"]["world_size"], 2);
}

TEST(TraceMerge, OtherDataOfTheWrongTypeOrRangeIsRefusedNamingTheFile) {
  TempDir tmp;
  const fs::path file = tmp.path() / "rank-00000.trace.json";
  auto err = [&](const json& trace) {
    write(file, trace);
    return error_of([&] { cmd_trace({"merge", tmp.str(), "-o", (tmp.path() / "m.json").string()}); });
  };
  EXPECT_THAT(err(rank_trace("0", 1)), AllOf(HasSubstr(file.string()), HasSubstr("otherData.rank")));
  EXPECT_THAT(err(rank_trace(0, 1.5)), AllOf(HasSubstr(file.string()), HasSubstr("otherData.world_size")));
  EXPECT_THAT(err(rank_trace(3, 2)), HasSubstr("otherData.rank is 3"));
  EXPECT_THAT(err(rank_trace(0, 2147483647)), HasSubstr("otherData.world_size is 2147483647"));
  json no_steps = rank_trace(0, 1);
  no_steps["otherData"].erase("end_step");
  EXPECT_THAT(err(no_steps), HasSubstr("otherData.end_step is missing"));
  EXPECT_THAT(err(json::array()), HasSubstr("not a zerotrain rank trace"));
  json events_not_a_list = rank_trace(0, 1);
  events_not_a_list["traceEvents"] = 7;
  EXPECT_THAT(err(events_not_a_list), HasSubstr("not a zerotrain rank trace"));
  EXPECT_FALSE(fs::exists(tmp.path() / "m.json"));
}

TEST(TraceMerge, ManyMissingRanksAreListedShort) {
  TempDir tmp;
  write(tmp.path() / "rank-00000.trace.json", rank_trace(0, 1000));
  const std::string e = error_of([&] { cmd_trace({"merge", tmp.str(), "-o", (tmp.path() / "m.json").string()}); });
  EXPECT_THAT(e, HasSubstr("the traces of rank(s) 1, 2, 3"));
  EXPECT_THAT(e, HasSubstr(", ..."));
  EXPECT_LT(e.size(), 400u);
}

}  // namespace
}  // namespace zt
