// The checkpoint format and manager in one process: checksums, the shard layout, reading
// any flat range of a checkpoint written by another world size, detection of every kind of
// corruption (named, nothing deleted), the on_corrupt fallback, and a bitwise engine round
// trip (sync and async).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <functional>

#include "core/crc32c.h"
#include "core/rng.h"
#include "model/transformer.h"
#include "optim/optimizer.h"
#include "parallel/checkpoint.h"
#include "parallel/comm.h"
#include "tests/support/checkpoint_edit.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::TempDir;

TEST(Crc32c, KnownValueAndIncremental) {
  const std::string s = "123456789";
  EXPECT_EQ(crc32c(s.data(), s.size()), 0xE3069283u);  // the standard check value
  EXPECT_EQ(crc32c(s.data() + 4, 5, crc32c(s.data(), 4)), 0xE3069283u);
  EXPECT_EQ(crc32c_hex(0xE3069283u), "e3069283");
  std::vector<uint8_t> big(100003);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7 + 3);
  uint32_t whole = crc32c(big.data(), big.size()), parts = 0;
  for (size_t at = 0; at < big.size(); at += 4099) parts = crc32c(big.data() + at, std::min<size_t>(4099, big.size() - at), parts);
  EXPECT_EQ(whole, parts);
}

std::vector<CkptUnit> test_units() {
  return {{"embed", 10, {{"wte", {5, 2}, 0}}},
          {"block.0", 7, {{"w", {3, 2}, 0}, {"b", {1}, 6}}},
          {"head", 1, {{"g", {1}, 0}}}};
}

const std::vector<std::string> kTensors = {"params", "exp_avg"};

// The value element i of a tensor holds in the hand-written checkpoints.
float value_at(int unit, const std::string& tensor, int64_t i) {
  return static_cast<float>(unit * 1000 + (tensor == "params" ? 0 : 500) + i) + 0.25f;
}

TEST(CheckpointFormat, ShardsCoverEveryElementOnceWithoutPadding) {
  const auto units = test_units();
  for (int world = 1; world <= 5; ++world) {
    std::map<std::pair<int, std::string>, std::vector<int>> seen;
    for (int r = 0; r < world; ++r) {
      int64_t offset = 0;
      for (const CkptSegment& s : shard_layout(units, kTensors, r, world)) {
        EXPECT_EQ(s.offset, offset) << "segments are contiguous in file order";
        offset += s.count * 4;
        auto& hits = seen[{s.unit, s.tensor}];
        hits.resize(units[s.unit].numel);
        ASSERT_LE(s.begin + s.count, units[s.unit].numel) << "padding is never written";
        for (int64_t i = s.begin; i < s.begin + s.count; ++i) ++hits[i];
      }
    }
    for (int u = 0; u < 3; ++u)
      for (const auto& t : kTensors) {
        const auto& hits = seen[{u, t}];
        ASSERT_EQ(hits.size(), static_cast<size_t>(units[u].numel)) << "world " << world;
        for (int h : hits) EXPECT_EQ(h, 1) << "world " << world << " unit " << u << " " << t;
      }
  }
}

// A checkpoint as `world` ranks would write it, with value_at() in every element.
CheckpointMeta write_hand_checkpoint(const fs::path& dir, int world, int64_t step = 20) {
  fs::create_directories(dir);
  CheckpointMeta m;
  m.step = step;
  m.world_size = world;
  m.zero_stage = 3;
  m.consumed_samples = 160;
  m.global_batch = 8;
  m.tensors = kTensors;
  m.units = test_units();
  m.state = {{"optimizer", {{"step_count", step}}}};
  m.config_yaml = "run:\n  name: hand\n";
  for (int r = 0; r < world; ++r) {
    CkptFile f{shard_file_name(r, world), 0, 0, shard_layout(m.units, m.tensors, r, world)};
    std::vector<float> data;
    for (const auto& s : f.segments)
      for (int64_t i = s.begin; i < s.begin + s.count; ++i) data.push_back(value_at(s.unit, s.tensor, i));
    std::ofstream(dir / f.name, std::ios::binary).write(reinterpret_cast<const char*>(data.data()), data.size() * 4);
    f.bytes = static_cast<int64_t>(data.size() * 4);
    f.crc32c = crc32c(data.data(), data.size() * 4);
    m.files.push_back(f);
  }
  write_meta(dir, m);
  return m;
}

TEST(CheckpointFormat, AnyRangeReadsBackFromAnyWriterWorldSize) {
  TempDir tmp;
  for (int world : {1, 2, 3, 4}) {
    const fs::path dir = tmp.path() / ("w" + std::to_string(world));
    write_hand_checkpoint(dir, world);
    const CheckpointMeta m = read_meta(dir);
    EXPECT_EQ(m.world_size, world);
    EXPECT_EQ(m.consumed_samples, 160);
    for (const auto& f : m.files) EXPECT_EQ(verify_shard(dir, f), "") << f.name;
    CheckpointReader reader(dir, m);
    for (int u = 0; u < 3; ++u)
      for (const auto& t : kTensors)
        for (int64_t begin = 0; begin <= m.units[u].numel; ++begin)
          for (int64_t count : {int64_t{1}, int64_t{3}, m.units[u].numel + 2}) {
            std::vector<float> got(count, -1.f);
            reader.read(u, t, begin, count, got.data());
            for (int64_t i = 0; i < count; ++i) {
              const float want = begin + i < m.units[u].numel ? value_at(u, t, begin + i) : 0.f;  // zero padding
              ASSERT_EQ(got[i], want) << "world " << world << " unit " << u << " " << t << " at " << begin + i;
            }
          }
  }
}

// Every problem verify_checkpoint reports, joined.
std::string problems(const fs::path& dir) {
  std::string all;
  for (const auto& p : verify_checkpoint(dir)) all += p + "\n";
  return all;
}

std::vector<std::string> files_under(const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) out.push_back(fs::relative(e.path(), root).string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(CheckpointFormat, EveryKindOfCorruptionIsDetectedAndNamed) {
  TempDir tmp;
  auto fresh = [&](const std::string& name) {
    const fs::path dir = tmp.path() / name;
    write_hand_checkpoint(dir, 3);
    EXPECT_EQ(problems(dir), "") << name;
    return dir;
  };
  const fs::path truncated = fresh("truncated");
  fs::resize_file(truncated / shard_file_name(1, 3), fs::file_size(truncated / shard_file_name(1, 3)) - 4);
  EXPECT_THAT(problems(truncated), HasSubstr(shard_file_name(1, 3)));

  const fs::path flipped = fresh("flipped");
  {
    std::fstream f(flipped / shard_file_name(2, 3), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(5);
    char c;
    f.read(&c, 1);
    c ^= 0x10;
    f.seekp(5);
    f.write(&c, 1);
  }
  EXPECT_THAT(problems(flipped), HasSubstr(shard_file_name(2, 3)));
  EXPECT_THAT(problems(flipped), HasSubstr("crc32c"));

  const fs::path deleted = fresh("deleted");
  fs::remove(deleted / shard_file_name(0, 3));
  EXPECT_THAT(problems(deleted), HasSubstr(shard_file_name(0, 3)));

  // An edited meta.json fails its own checksum...
  const fs::path edited = fresh("edited");
  std::string text = testing::read_file(edited / kMetaFile);
  const auto at = text.find("\"world_size\": 3");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, 15, "\"world_size\": 4");
  std::ofstream(edited / kMetaFile) << text;
  EXPECT_THAT(problems(edited), HasSubstr(kMetaFile));
  EXPECT_THROW(read_meta(edited), CheckpointCorrupt);

  // ...and one rewritten with a valid checksum but claiming 4 ranks over 3 files fails the
  // structure check.
  const fs::path claims = fresh("claims-world-4");
  CheckpointMeta m = read_meta(claims);
  m.world_size = 4;
  write_meta(claims, m);
  EXPECT_THAT(problems(claims), HasSubstr("world"));

  const fs::path no_meta = fresh("no-meta");
  fs::remove(no_meta / kMetaFile);
  EXPECT_THAT(problems(no_meta), HasSubstr(kMetaFile));

  // Verifying again changes nothing on disk: every corrupt file is still there.
  const auto before = files_under(tmp.path());
  EXPECT_EQ(before.size(), 6u * 5 - 2);  // 6 directories of meta + 3 shards, 2 files removed above
  for (const char* name : {"truncated", "flipped", "deleted", "edited", "claims-world-4", "no-meta"}) problems(tmp.path() / name);
  EXPECT_EQ(files_under(tmp.path()), before);
}

// Recorded counts and sizes so large that count * 4 or a sum of them wraps: a unit of 2^62
// elements in a segment of 2^62 * 4 = 2^64 = "0" bytes once passed as covering and fitting.
TEST(CheckpointFormat, SegmentCountsAndSizesThatOverflowAreRefused) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "huge";
  CheckpointMeta m = write_hand_checkpoint(dir, 1);
  m.units[0].numel = int64_t{1} << 62;
  for (CkptSegment& s : m.files[0].segments)
    if (s.unit == 0) s.count = s.begin == 0 ? m.units[0].numel : 0;
  write_meta(dir, m);
  try {
    read_meta(dir);
    ADD_FAILURE() << "read_meta accepted a segment of 2^62 elements";
  } catch (const CheckpointCorrupt& e) {
    EXPECT_THAT(e.what(), HasSubstr("`numel` is 4611686018427387904"));
  }

  CheckpointMeta sizes = write_hand_checkpoint(tmp.path() / "sizes", 2);
  sizes.files[0].bytes = sizes.files[1].bytes = INT64_MAX;
  write_meta(tmp.path() / "sizes", sizes);
  try {
    read_meta(tmp.path() / "sizes");
    ADD_FAILURE() << "read_meta accepted files whose sizes sum past int64";
  } catch (const CheckpointCorrupt& e) {
    EXPECT_THAT(e.what(), HasSubstr("`bytes` is 9223372036854775807"));
  }
}

TEST(CheckpointFormat, AnotherModelShapeIsRefusedNamingTheTensor) {
  TempDir tmp;
  const CheckpointMeta m = write_hand_checkpoint(tmp.path() / "c", 2);
  auto other = test_units();
  other[1].params[0].shape = {2, 3};
  try {
    check_same_model(m, other, tmp.path() / "c");
    FAIL() << "accepted another model";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("w"));
    EXPECT_THAT(e.what(), HasSubstr("[3, 2]"));
    EXPECT_THAT(e.what(), HasSubstr("[2, 3]"));
  }
  auto renamed = test_units();
  renamed[2].params[0].name = "gamma";
  EXPECT_THROW(check_same_model(m, renamed, tmp.path() / "c"), Error);
  EXPECT_NO_THROW(check_same_model(m, test_units(), tmp.path() / "c"));
}

TEST(CheckpointResume, CorruptLatestIsAnErrorOrFallsBackAndNothingIsDeleted) {
  TempDir tmp;
  auto comm = make_single_process_comm();
  const fs::path root = tmp.path();
  write_hand_checkpoint(root / checkpoint_name(10), 2, 10);
  write_hand_checkpoint(root / checkpoint_name(20), 2, 20);
  write_latest(root, checkpoint_name(20));
  fs::create_directories(root / (checkpoint_name(30) + ".tmp"));  // a crash mid-save

  auto point = find_resume_point(*comm, root, "auto", OnCorrupt::error);
  ASSERT_TRUE(point.has_value());
  EXPECT_EQ(point->meta.step, 20);
  EXPECT_FALSE(find_resume_point(*comm, root, "none", OnCorrupt::error).has_value());
  point = find_resume_point(*comm, root, (root / checkpoint_name(10)).string(), OnCorrupt::error);
  ASSERT_TRUE(point.has_value());
  EXPECT_EQ(point->meta.step, 10);

  const fs::path bad = root / checkpoint_name(20) / shard_file_name(1, 2);
  fs::resize_file(bad, 8);
  const auto before = files_under(root);
  try {
    find_resume_point(*comm, root, "auto", OnCorrupt::error);
    FAIL() << "a corrupt latest was accepted";
  } catch (const CheckpointCorrupt& e) {
    EXPECT_THAT(e.what(), HasSubstr(bad.string()));
    EXPECT_THAT(e.what(), HasSubstr("on_corrupt: previous"));
  }
  point = find_resume_point(*comm, root, "auto", OnCorrupt::previous);
  ASSERT_TRUE(point.has_value());
  EXPECT_EQ(point->meta.step, 10);
  EXPECT_EQ(files_under(root), before) << "verification deleted or moved files";

  // Nothing intact at all: the error says so rather than starting from scratch silently.
  fs::remove(root / checkpoint_name(10) / kMetaFile);
  EXPECT_THROW(find_resume_point(*comm, root, "auto", OnCorrupt::previous), Error);
  // An empty root with auto starts fresh.
  EXPECT_FALSE(find_resume_point(*comm, tmp.path() / "empty", "auto", OnCorrupt::error).has_value());
}

ModelSpec tiny_spec() {
  ModelSpec s;
  s.family = Family::llama;
  s.n_layer = 2;
  s.d_model = 16;
  s.n_head = 4;
  s.n_kv_head = 2;
  s.d_ff = 20;
  s.vocab_size = 13;
  s.max_seq_len = 8;
  return s;
}

// The engine's saved tensors, unit by unit, in saved_tensor_names() order.
std::vector<std::vector<float>> snapshot(Engine& engine, size_t num_units) {
  std::vector<std::vector<float>> out;
  for (size_t u = 0; u < num_units; ++u)
    for (auto& [name, t] : engine.owned_state(u).tensors)
      out.emplace_back(t.data<float>(), t.data<float>() + t.numel());
  return out;
}

class EngineRoundTrip : public ::testing::TestWithParam<bool> {};

TEST_P(EngineRoundTrip, SaveThenLoadIsBitwiseIdentical) {
  const bool async = GetParam();
  TempDir tmp;
  auto comm = make_single_process_comm();
  Transformer a_model(tiny_spec()), b_model(tiny_spec());
  Engine a(a_model, *comm, make_adamw({}), {});
  Engine b(b_model, *comm, make_adamw({}), {});
  const size_t num_units = a_model.units().size();
  Rng rng(7, 0);
  for (size_t u = 0; u < num_units; ++u)
    for (auto& [name, t] : a.owned_state(u).tensors)
      for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = rng.next_float() - 0.5f;
  a.optimizer().set_step_count(17);

  CheckpointManager saver(a, {tmp.path(), 2, async});
  TrainingState state;
  state.step = 17;
  state.consumed_samples = 136;
  state.global_batch = 8;
  state.extra = {{"sampler", {{"epoch", 0}}}};
  state.config_yaml = "run: {}\n";
  saver.save(state);
  if (async) {
    EXPECT_TRUE(saver.has_pending());
    EXPECT_FALSE(read_latest(tmp.path()).has_value()) << "an async checkpoint was visible before finish()";
    ASSERT_TRUE(saver.finish().has_value());
  }
  EXPECT_EQ(read_latest(tmp.path()), tmp.path() / checkpoint_name(17));
  EXPECT_EQ(problems(tmp.path() / checkpoint_name(17)), "");

  auto point = find_resume_point(*comm, tmp.path(), "auto", OnCorrupt::error);
  ASSERT_TRUE(point.has_value());
  CheckpointManager loader(b, {tmp.path(), 2, false});
  const TrainingState loaded = loader.load(*point);
  EXPECT_EQ(loaded.step, 17);
  EXPECT_EQ(loaded.consumed_samples, 136);
  EXPECT_EQ(loaded.extra.at("sampler").at("epoch"), 0);
  EXPECT_EQ(b.optimizer().step_count(), 17);
  const auto want = snapshot(a, num_units), got = snapshot(b, num_units);
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_EQ(0, std::memcmp(want[i].data(), got[i].data(), want[i].size() * 4)) << "tensor " << i;
}

INSTANTIATE_TEST_SUITE_P(Modes, EngineRoundTrip, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "async" : "sync"; });

TEST(CheckpointManager, KeepsOnlyTheLastKAndPointsLatestAtTheNewest) {
  TempDir tmp;
  auto comm = make_single_process_comm();
  Transformer model(tiny_spec());
  Engine engine(model, *comm, make_adamw({}), {});
  CheckpointManager manager(engine, {tmp.path(), 2, false});
  for (int64_t step : {10, 20, 30, 40}) {
    TrainingState s;
    s.step = step;
    s.global_batch = 1;
    manager.save(s);
  }
  const auto kept = list_checkpoints(tmp.path());
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].step, 40);
  EXPECT_EQ(kept[1].step, 30);
  EXPECT_EQ(read_latest(tmp.path()), tmp.path() / checkpoint_name(40));
}

}  // namespace
// A saved one-process checkpoint of the tiny model at step 17, for tampering with.
fs::path saved_checkpoint(const TempDir& tmp) {
  auto comm = make_single_process_comm();
  Transformer model(tiny_spec());
  Engine engine(model, *comm, make_adamw({}), {});
  CheckpointManager saver(engine, {tmp.path(), 2, false});
  TrainingState state;
  state.step = 17;
  state.consumed_samples = 136;
  state.global_batch = 8;
  state.extra = {{"sampler", {{"epoch", 0}}}};
  saver.save(state);
  return tmp.path() / checkpoint_name(17);
}

TEST(CheckpointMeta, ValuesOutOfRangeAreCorruptionNamingTheFileAndKey) {
  using nlohmann::json;
  struct Case {
    const char* key;
    std::function<void(json&)> edit;
  } cases[] = {
      {"step", [](json& j) { j["step"] = -5; }},
      {"step", [](json& j) { j["step"] = 1000000000000000000LL; }},
      {"step", [](json& j) { j["step"] = 6.7; }},
      {"zero_stage", [](json& j) { j["zero_stage"] = 9; }},
      {"world_size", [](json& j) { j["world_size"] = (int64_t(1) << 40) + 1; }},
      {"consumed_samples", [](json& j) { j["consumed_samples"] = -1; }},
      {"global_batch", [](json& j) { j["global_batch"] = "8"; }},
      {"state", [](json& j) { j.erase("state"); }},
      {"step_count", [](json& j) { j["state"]["optimizer"]["step_count"] = -7; }},
      {"count", [](json& j) { j["files"][0]["segments"][0]["count"] = int64_t(1) << 62; }},
      {"crc32c", [](json& j) { j["files"][0]["crc32c"] = "zzzzzzzz"; }},
  };
  for (const Case& c : cases) {
    TempDir tmp;
    const fs::path dir = saved_checkpoint(tmp);
    ASSERT_NO_THROW(read_meta(dir));
    testing::reseal_meta(dir, c.edit);
    try {
      read_meta(dir);
      ADD_FAILURE() << c.key << ": accepted";
    } catch (const CheckpointCorrupt& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr((dir / kMetaFile).string())) << c.key;
      EXPECT_THAT(e.what(), ::testing::HasSubstr(c.key)) << e.what();
    }
  }
}

TEST(CheckpointLatest, APointerThatIsNotAStepDirectoryBesideItIsCorrupt) {
  for (const std::string content : {"", "garbage\n", "../..\n", "/tmp\n", "step-00000099\n"}) {
    TempDir tmp;
    saved_checkpoint(tmp);
    std::ofstream(tmp.path() / kLatestFile) << content;
    EXPECT_THROW(read_latest(tmp.path()), CheckpointCorrupt) << "'" << content << "'";
  }
  TempDir tmp;
  saved_checkpoint(tmp);
  fs::remove(tmp.path() / kLatestFile);
  fs::create_directory(tmp.path() / kLatestFile);
  EXPECT_THROW(read_latest(tmp.path()), CheckpointCorrupt) << "a directory";
  fs::remove(tmp.path() / kLatestFile);
  EXPECT_FALSE(read_latest(tmp.path()).has_value());
  fs::create_directory(tmp.path() / checkpoint_name(18));  // an interrupted save
  write_latest(tmp.path(), checkpoint_name(18));
  EXPECT_THROW(read_latest(tmp.path()), CheckpointCorrupt) << "no meta.json";
  write_latest(tmp.path(), checkpoint_name(17));
  EXPECT_EQ(read_latest(tmp.path()), tmp.path() / checkpoint_name(17));
}

// A shard that is a device or a directory is refused at once instead of being read forever.
TEST(CheckpointShards, ANonRegularShardIsAProblemNotAHang) {
  TempDir tmp;
  const fs::path dir = saved_checkpoint(tmp);
  const CheckpointMeta meta = read_meta(dir);
  const fs::path shard = dir / meta.files[0].name;
  fs::remove(shard);
  fs::create_symlink("/dev/zero", shard);
  const auto problems = verify_checkpoint(dir);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], ::testing::HasSubstr("character device"));
  EXPECT_THROW(CheckpointReader(dir, meta), Error);
  fs::remove(shard);
  fs::create_directory(shard);
  EXPECT_THAT(verify_checkpoint(dir).at(0), ::testing::HasSubstr("a directory"));
}

}  // namespace zt
