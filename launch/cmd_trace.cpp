// `zt trace merge DIR -o merged.json`: every rank's Chrome trace of a profiled window on
// one timeline. Each rank's timestamps already count from its exit of the barrier that
// opened the window, so merging checks that the files belong together and concatenates.
#include <cstdio>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fileio.h"
#include "launch/cli.h"
#include "launch/commands.h"

namespace zt {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Ranks past this are not a run zt launch or mpirun started; it bounds the missing-rank list.
constexpr int64_t kMaxWorld = 1 << 20;

json read_trace(const fs::path& file) {
  json j;
  try {
    j = json::parse(read_text_file(file));
  } catch (const json::exception& e) {
    fail("{}: not valid JSON: {}", file.string(), e.what());
  }
  if (!j.is_object() || !j.contains("traceEvents") || !j["traceEvents"].is_array() || !j.contains("otherData") ||
      !j["otherData"].is_object() || !j["otherData"].contains("rank"))
    fail("{}: not a zerotrain rank trace (no traceEvents list / otherData.rank)", file.string());
  const json& o = j["otherData"];
  auto integer = [&](const char* key, int64_t lo, int64_t hi) {
    if (!o.contains(key) || !o[key].is_number_integer() || o[key].get<int64_t>() < lo || o[key].get<int64_t>() > hi)
      fail("{}: otherData.{} is {}, expected an integer in [{}, {}]", file.string(), key,
           o.contains(key) ? o[key].dump() : "missing", lo, hi);
  };
  integer("world_size", 1, kMaxWorld);
  integer("rank", 0, o["world_size"].get<int64_t>() - 1);
  integer("start_step", 0, INT64_MAX);
  integer("end_step", 0, INT64_MAX);
  return j;
}

int merge(const fs::path& dir, const fs::path& out) {
  if (!fs::is_directory(dir)) fail("{}: no such directory", dir.string());
  std::map<int, json> ranks;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (!name.starts_with("rank-") || !name.ends_with(".trace.json")) continue;
    json t = read_trace(e.path());
    const int rank = t["otherData"]["rank"].get<int>();
    if (ranks.count(rank)) fail("{}: two files for rank {}", dir.string(), rank);
    ranks[rank] = std::move(t);
  }
  if (ranks.empty()) fail("{}: no rank-NNNNN.trace.json files (profile.enabled writes them)", dir.string());
  const json& first = ranks.begin()->second["otherData"];
  const int world = first["world_size"].get<int>();
  for (const auto& [rank, t] : ranks) {
    const json& o = t["otherData"];
    if (o["world_size"] != world || o["start_step"] != first["start_step"] || o["end_step"] != first["end_step"])
      fail("{}: rank {}'s trace is of another run or window (world {}, steps {}..{}) than rank {}'s", dir.string(), rank,
           o["world_size"].dump(), o["start_step"].dump(), o["end_step"].dump(), ranks.begin()->first);
  }
  if (static_cast<int>(ranks.size()) != world) {
    std::string missing;
    for (int r = 0, listed = 0; r < world; ++r)
      if (!ranks.count(r) && listed++ < 16) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
    if (world - static_cast<int>(ranks.size()) > 16) missing += ", ...";
    fail("{}: the run had {} ranks but the traces of rank(s) {} are missing", dir.string(), world, missing);
  }
  json events = json::array();
  for (auto& [rank, t] : ranks)
    for (auto& e : t["traceEvents"]) events.push_back(std::move(e));
  json merged = {{"traceEvents", std::move(events)},
                 {"displayTimeUnit", "ms"},
                 {"otherData",
                  {{"world_size", world},
                   {"start_step", first["start_step"]},
                   {"end_step", first["end_step"]},
                   {"clock", "microseconds since each rank left the barrier that opened the window"}}}};
  write_file_atomic(out, merged.dump());
  std::printf("merged %d rank trace(s) of steps %s..%s into %s (open in https://ui.perfetto.dev or chrome://tracing)\n",
              world, first["start_step"].dump().c_str(), first["end_step"].dump().c_str(), out.string().c_str());
  return 0;
}

}  // namespace

int cmd_trace(const Args& args) {
  CliArgs cli("trace", args, {"o"});
  cli.expect_positionals(2, 2);
  const std::string& sub = cli.positional(0, "merge");
  if (sub != "merge") fail("zt trace: unknown subcommand '{}' (expected: merge DIR -o merged.json)", sub);
  const fs::path dir = cli.positional(1, "DIR");
  return merge(dir, cli.get_or("o", (dir / "merged.trace.json").string()));
}

}  // namespace zt
