#include <cstdio>
#include <filesystem>
#include <regex>

#include "launch/cli.h"
#include "launch/commands.h"
#include "core/crc32c.h"
#include "parallel/checkpoint.h"

namespace zt {

namespace fs = std::filesystem;

namespace {

std::string mib(int64_t bytes) { return fmt::format("{:.2f} MiB", static_cast<double>(bytes) / 1048576.0); }

// One checkpoint, or every checkpoint of a root / run directory, newest first.
std::vector<fs::path> checkpoints_at(const fs::path& path) {
  if (fs::exists(path / kMetaFile)) return {path};
  for (const fs::path& root : {path, path / "checkpoints"}) {
    std::vector<fs::path> out;
    for (const CheckpointEntry& e : list_checkpoints(root)) out.push_back(e.dir);
    if (!out.empty()) return out;
  }
  if (!fs::exists(path)) fail("{}: no such directory", path.string());
  fail("{}: no checkpoint here (no meta.json, no step-N directories here or under checkpoints/)", path.string());
}

int inspect(const fs::path& path) {
  const fs::path dir = resolve_checkpoint_path(path);
  CheckpointMeta meta;
  try {
    meta = read_meta(dir);
  } catch (const CheckpointCorrupt& e) {
    std::printf("checkpoint %s\n  CORRUPT: %s\n", dir.string().c_str(), e.what());
    return 1;
  }
  int64_t params = 0;
  for (const CkptUnit& u : meta.units) params += u.numel;
  // Shown as written (resuming checks it): a hand-edited value must not stop inspect.
  const nlohmann::json sampler = meta.state.value("sampler", nlohmann::json());
  const std::string epoch = sampler.contains("epoch") ? sampler["epoch"].dump() : "0";
  std::printf("checkpoint %s\n", dir.string().c_str());
  std::printf("  step %lld, consumed samples %lld (epoch %s), global batch %lld\n", static_cast<long long>(meta.step),
              static_cast<long long>(meta.consumed_samples), epoch.c_str(), static_cast<long long>(meta.global_batch));
  std::printf("  saved by %d rank(s) at ZeRO stage %d; tensors: %s\n", meta.world_size, meta.zero_stage,
              fmt::format("{}", fmt::join(meta.tensors, ", ")).c_str());
  std::printf("  %lld parameters in %zu units, %s on disk\n", static_cast<long long>(params), meta.units.size(),
              mib(meta.total_bytes()).c_str());
  for (const CkptUnit& u : meta.units)
    std::printf("    %-24s %10lld params, %zu tensors\n", u.name.c_str(), static_cast<long long>(u.numel), u.params.size());
  int bad = 0;
  std::printf("  %-32s %12s  %-8s  %s\n", "file", "size", "crc32c", "status");
  std::printf("  %-32s %12s  %-8s  ok\n", kMetaFile, "", "self");
  for (const CkptFile& f : meta.files) {
    const std::string problem = verify_shard(dir, f);
    bad += !problem.empty();
    std::printf("  %-32s %12s  %s  %s\n", f.name.c_str(), mib(f.bytes).c_str(), crc32c_hex(f.crc32c).c_str(),
                problem.empty() ? "ok" : problem.c_str());
  }
  return bad ? 1 : 0;
}

// Verifies every checkpoint at `path` and, for a checkpoints root or run directory, what a
// resume would read first: the `latest` pointer. Exits 1 when a resume would fail.
int verify(const fs::path& path) {
  int bad = 0;
  for (const fs::path& dir : checkpoints_at(path)) {
    const std::vector<std::string> problems = verify_checkpoint(dir);
    if (problems.empty()) {
      const CheckpointMeta meta = read_meta(dir);
      std::printf("ok       %s (step %lld, %zu shard files, %s)\n", dir.string().c_str(),
                  static_cast<long long>(meta.step), meta.files.size(), mib(meta.total_bytes()).c_str());
    } else {
      ++bad;
      for (const std::string& p : problems) std::printf("CORRUPT  %s: %s\n", dir.string().c_str(), p.c_str());
    }
  }
  if (fs::exists(path / kMetaFile)) return bad ? 1 : 0;
  const fs::path root = fs::exists(path / kLatestFile) || !fs::is_directory(path / "checkpoints") ? path : path / "checkpoints";
  try {
    if (auto latest = read_latest(root))
      std::printf("latest   %s\n", latest->string().c_str());
    else
      std::printf("WARNING  %s has no `latest` file: a resume considers the checkpoints newest first\n", root.string().c_str());
  } catch (const CheckpointCorrupt& e) {
    ++bad;
    std::printf("CORRUPT  %s\n", e.what());
  }
  static const std::regex step_dir("step-[0-9]{8,}");
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec))
    if (e.is_directory() && std::regex_match(e.path().filename().string(), step_dir) && !fs::exists(e.path() / kMetaFile))
      std::printf("partial  %s (no %s: an interrupted save, never resumed from)\n", e.path().string().c_str(), kMetaFile);
  return bad ? 1 : 0;
}

}  // namespace

// zt ckpt inspect DIR | zt ckpt verify DIR
int cmd_ckpt(const Args& args) {
  if (args.empty() || (args[0] != "inspect" && args[0] != "verify"))
    fail("zt ckpt: expected 'zt ckpt inspect DIR' or 'zt ckpt verify DIR'");
  CliArgs cli("ckpt " + args[0], Args(args.begin() + 1, args.end()), {});
  cli.expect_positionals(1, 1);
  const fs::path path = cli.positional(0, "DIR");
  return args[0] == "inspect" ? inspect(path) : verify(path);
}

}  // namespace zt
