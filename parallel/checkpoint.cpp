#include "parallel/checkpoint.h"

#include <chrono>
#include <csignal>
#include <cstring>

#include "core/crc32c.h"
#include "core/fault_injection.h"
#include "core/fileio.h"
#include "core/log.h"

namespace zt {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// All ranks agree on a flag: true when any rank raised it.
bool any_rank(Communicator& comm, bool mine) {
  Tensor t = Tensor::empty({1}, DType::f64, MemTag::comm);
  t.data<double>()[0] = mine ? 1 : 0;
  comm.all_reduce(t, ReduceOp::max)->wait();
  return t.data<double>()[0] > 0;
}

// Verification shared by the ranks: meta.json by all (it says what else to check), shard
// file i by rank i mod W. Returns the first problem in file order (every rank gets the
// same answer), or nullopt.
std::optional<std::string> verify_together(Communicator& comm, const fs::path& dir, CheckpointMeta* meta_out) {
  CheckpointMeta meta;
  try {
    meta = read_meta(dir);
  } catch (const CheckpointCorrupt& e) {
    return std::string(e.what());
  }
  const int W = comm.world_size(), r = comm.rank();
  const int n = static_cast<int>(meta.files.size());
  int first_bad = n;
  for (int i = r; i < n; i += W)
    if (!verify_shard(dir, meta.files[i]).empty()) {
      first_bad = i;
      break;
    }
  Tensor t = Tensor::empty({1}, DType::f64, MemTag::comm);
  t.data<double>()[0] = n - first_bad;  // max over ranks = the first bad file
  comm.all_reduce(t, ReduceOp::max)->wait();
  const int bad = n - static_cast<int>(t.data<double>()[0]);
  if (bad < n) return verify_shard(dir, meta.files[bad]);  // every rank names the same file
  *meta_out = std::move(meta);
  return std::nullopt;
}

}  // namespace

std::vector<std::string> verify_checkpoint(const fs::path& dir) {
  CheckpointMeta meta;
  try {
    meta = read_meta(dir);
  } catch (const CheckpointCorrupt& e) {
    return {e.what()};
  }
  std::vector<std::string> problems;
  for (const CkptFile& f : meta.files)
    if (std::string p = verify_shard(dir, f); !p.empty()) problems.push_back(p);
  return problems;
}

std::optional<ResumePoint> find_resume_point(Communicator& comm, const fs::path& root, const std::string& resume,
                                             OnCorrupt on_corrupt) {
  if (resume == "none") return std::nullopt;
  const auto start = Clock::now();
  std::vector<fs::path> candidates;
  if (resume != "auto") {
    candidates.push_back(resolve_checkpoint_path(resume));
  } else {
    std::optional<fs::path> latest;
    try {
      latest = read_latest(root);
    } catch (const CheckpointCorrupt& e) {
      if (on_corrupt == OnCorrupt::error)
        throw CheckpointCorrupt(fmt::format("{} (checkpoint.on_corrupt: previous ignores it and resumes from the newest "
                                            "intact checkpoint)", e.what()));
      log::warn_once("ignoring {}", e.what());
    }
    if (latest) candidates.push_back(*latest);
    for (const CheckpointEntry& e : list_checkpoints(root))
      if (!latest || fs::weakly_canonical(e.dir) != fs::weakly_canonical(*latest)) candidates.push_back(e.dir);
    if (!latest && !candidates.empty())
      log::warn_once("{} has checkpoints but no `latest` file; considering them newest first", root.string());
  }
  for (size_t i = 0; i < candidates.size(); ++i) {
    ResumePoint point;
    point.dir = candidates[i];
    const auto problem = verify_together(comm, point.dir, &point.meta);
    if (!problem) {
      point.verify_s = seconds_since(start);
      if (i > 0) log::warn_once("resuming from {}, the newest intact checkpoint", point.dir.string());
      return point;
    }
    if (on_corrupt == OnCorrupt::error || resume != "auto")
      throw CheckpointCorrupt(fmt::format(
          "checkpoint {} failed verification: {}{}", point.dir.string(), *problem,
          resume == "auto" ? " (checkpoint.on_corrupt: previous falls back to the newest intact checkpoint)" : ""));
    log::warn_once("checkpoint {} failed verification, skipping it (kept on disk): {}", point.dir.string(), *problem);
  }
  if (!candidates.empty())
    fail("no intact checkpoint under {}: all {} failed verification (see above); set checkpoint.resume: none to start over",
         root.string(), candidates.size());
  return std::nullopt;
}

CheckpointManager::CheckpointManager(Engine& engine, CheckpointOptions options)
    : engine_(engine), comm_(engine.comm()), options_(std::move(options)) {
  units_ = describe_units(engine_.model());
  tensors_ = engine_.saved_tensor_names();
  layout_ = shard_layout(units_, tensors_, comm_.rank(), comm_.world_size());
  if (options_.async) {
    // The snapshot buffer lives as long as the manager. Its pages are touched now, on a
    // background thread, so that the first save does not stall training for the page faults
    // (a fresh page costs ~11 us here: seconds for a GPT-2 124M shard).
    int64_t total = 0;
    for (const CkptSegment& s : layout_) total += s.count;
    staging_ = Tensor::empty({std::max<int64_t>(total, 1)}, DType::f32, MemTag::other);
    prefault_ = std::thread([p = staging_.data<float>(), n = staging_.numel()] { std::memset(p, 0, n * 4); });
  }
}

CheckpointManager::~CheckpointManager() {
  if (prefault_.joinable()) prefault_.join();
  if (writer_.joinable()) writer_.join();
}

fs::path CheckpointManager::begin_save(int64_t step) {
  const fs::path tmp = options_.root / (checkpoint_name(step) + ".tmp");
  bool failed = false;
  if (comm_.rank() == 0) {
    try {
      fs::create_directories(options_.root);
      // Partial checkpoints of crashed saves are never listed; this is where they go.
      for (const auto& e : fs::directory_iterator(options_.root))
        if (e.is_directory() && e.path().extension() == ".tmp") fs::remove_all(e.path());
      fs::create_directories(tmp);
    } catch (const std::exception& e) {
      log::error("cannot prepare checkpoint directory {}: {}", tmp.string(), e.what());
      failed = true;
    }
  }
  if (any_rank(comm_, failed)) fail("checkpoint {}: rank 0 could not create the directory (see its log)", tmp.string());
  return tmp;
}

CheckpointManager::Written CheckpointManager::write_shard(const fs::path& path, const std::vector<const float*>& sources,
                                                          int64_t step) {
  const auto start = Clock::now();
  Written w;
  try {
    FileWriter out(path);
    uint32_t crc = 0;
    for (size_t i = 0; i < layout_.size(); ++i) {
      if (i == layout_.size() / 2 && fault_injected("crash_in_save", step, comm_.rank())) std::raise(SIGKILL);
      const size_t n = static_cast<size_t>(layout_[i].count) * 4;
      crc = crc32c(sources[i], n, crc);
      out.write(sources[i], n);
    }
    out.close();
    w.bytes = out.bytes();
    w.crc = crc;
  } catch (const std::exception& e) {
    w.error = e.what();
  }
  w.seconds = seconds_since(start);
  return w;
}

SaveStats CheckpointManager::save(const TrainingState& state) {
  if (pending_) finish();
  const auto start = Clock::now();
  Pending p;
  p.state = state;
  p.step_count = engine_.optimizer().step_count();
  p.tmp = begin_save(state.step);
  p.stats.step = state.step;
  p.stats.dir = options_.root / checkpoint_name(state.step);

  // Where each segment's data lives in this rank's state: the files hold host bytes, so a
  // segment on a GPU is copied to the host first (the format does not know devices).
  std::vector<const float*> sources;
  std::vector<Tensor> from_device;  // keeps those copies alive until written
  for (const CkptSegment& s : layout_) {
    Engine::OwnedState owned = engine_.owned_state(s.unit);
    const Tensor* t = nullptr;
    for (auto& [name, tensor] : owned.tensors)
      if (name == s.tensor) t = &tensor;
    ZT_CHECK(t, "no tensor {}", s.tensor);
    Tensor segment = t->view(s.begin - owned.begin, {s.count});
    if (!segment.device().is_cpu()) segment = from_device.emplace_back(segment.to(Device::cpu(), MemTag::other));
    sources.push_back(segment.data<float>());
  }
  const fs::path file = p.tmp / shard_file_name(comm_.rank(), comm_.world_size());
  if (!options_.async) {
    const Written w = write_shard(file, sources, state.step);
    p.stats.write_s = w.seconds;
    p.stats.bytes = w.bytes;
    publish(p, w);
    p.stats.stall_s = seconds_since(start);
    return p.stats;
  }
  // Async: copy to a host snapshot that training cannot touch, write it in the background.
  if (prefault_.joinable()) prefault_.join();
  std::vector<const float*> snapshot;
  float* at = staging_.data<float>();
  for (size_t i = 0; i < layout_.size(); ++i) {
    std::memcpy(at, sources[i], static_cast<size_t>(layout_[i].count) * 4);
    snapshot.push_back(at);
    at += layout_[i].count;
  }
  p.stats.stall_s = seconds_since(start);
  write_done_ = false;
  const int64_t step = state.step;
  writer_ = std::thread([this, file, snapshot, step] {
    written_ = write_shard(file, snapshot, step);
    write_done_ = true;
  });
  pending_ = std::move(p);
  return pending_->stats;
}

std::optional<SaveStats> CheckpointManager::finish() {
  if (!pending_) return std::nullopt;
  if (writer_.joinable()) writer_.join();
  Pending p = std::move(*pending_);
  pending_.reset();
  p.stats.bytes = written_.bytes;
  p.stats.write_s = written_.seconds;
  publish(p, written_);
  return p.stats;
}

void CheckpointManager::publish(const Pending& p, const Written& mine) {
  const int W = comm_.world_size();
  // Every rank's size and checksum to rank 0; a negative size marks a failed write.
  Tensor local = Tensor::empty({2}, DType::f64, MemTag::comm);
  local.data<double>()[0] = static_cast<double>(mine.bytes);
  local.data<double>()[1] = static_cast<double>(mine.crc);
  Tensor all = Tensor::empty({2 * W}, DType::f64, MemTag::comm);
  comm_.all_gather(all, local)->wait();
  // (Alone, this rank's error is the message below; with peers, each names its own.)
  if (!mine.error.empty() && W > 1)
    log::error("checkpoint step {}: writing this rank's shard failed: {}", p.state.step, mine.error);
  // A checkpoint that cannot be completed leaves nothing behind but the previous ones.
  auto drop_partial = [&] {
    std::error_code ec;
    if (comm_.rank() == 0) fs::remove_all(p.tmp, ec);
  };
  for (int r = 0; r < W; ++r)
    if (all.data<double>()[2 * r] < 0) {
      drop_partial();
      fail("checkpoint step {} not saved: rank {} could not write its shard{}; the previous checkpoint stays `latest`",
           p.state.step, r, mine.error.empty() ? " (see its log)" : ": " + mine.error);
    }

  bool failed = false;
  std::string error;
  if (comm_.rank() == 0) {
    try {
      CheckpointMeta meta;
      meta.step = p.state.step;
      meta.world_size = W;
      meta.zero_stage = engine_.stage();
      meta.consumed_samples = p.state.consumed_samples;
      meta.global_batch = p.state.global_batch;
      meta.tensors = tensors_;
      meta.units = units_;
      meta.state = p.state.extra;
      meta.state["optimizer"] = {{"step_count", p.step_count}};
      meta.config_yaml = p.state.config_yaml;
      for (int r = 0; r < W; ++r)
        meta.files.push_back({shard_file_name(r, W), static_cast<int64_t>(all.data<double>()[2 * r]),
                              static_cast<uint32_t>(all.data<double>()[2 * r + 1]), shard_layout(units_, tensors_, r, W)});
      write_meta(p.tmp, meta);
      fsync_path(p.tmp);
      const fs::path final_dir = p.stats.dir;
      if (fs::exists(final_dir)) {
        // A checkpoint of this step from an earlier attempt (one that failed verification,
        // say): set aside, never deleted.
        const fs::path aside = final_dir.string() + fmt::format(".replaced-{}", std::time(nullptr));
        fs::rename(final_dir, aside);
        log::warn("{} already existed; moved it to {}", final_dir.string(), aside.string());
      }
      fs::rename(p.tmp, final_dir);
      fsync_path(options_.root);
      write_latest(options_.root, checkpoint_name(p.state.step));
      // Keep the newest keep_last complete checkpoints up to this one.
      int64_t kept = 0;
      for (const CheckpointEntry& e : list_checkpoints(options_.root)) {
        if (e.step > p.state.step) continue;
        if (++kept > options_.keep_last) fs::remove_all(e.dir);
      }
    } catch (const std::exception& e) {
      error = e.what();
      failed = true;
      drop_partial();
    }
  }
  if (any_rank(comm_, failed))
    fail("checkpoint step {} not published{}", p.state.step, error.empty() ? " (rank 0 failed, see its log)" : ": " + error);
}

TrainingState CheckpointManager::load(const ResumePoint& point, LoadStats* stats) {
  const auto start = Clock::now();
  const CheckpointMeta& meta = point.meta;
  check_same_model(meta, units_, point.dir);
  if (meta.tensors != tensors_)
    fail("checkpoint {} holds optimizer state [{}], but this run's optimizer keeps [{}] (optim.name or optim.momentum changed?)",
         point.dir.string(), fmt::join(meta.tensors, ", "), fmt::join(tensors_, ", "));
  CheckpointReader reader(point.dir, meta);
  for (size_t u = 0; u < units_.size(); ++u) {
    Engine::OwnedState owned = engine_.owned_state(u);
    for (auto& [name, t] : owned.tensors) {
      if (t.device().is_cpu()) {
        reader.read(static_cast<int>(u), name, owned.begin, t.numel(), t.data<float>());
        continue;
      }
      Tensor host = Tensor::empty({t.numel()}, DType::f32, MemTag::other);  // read on the host, then copied over
      reader.read(static_cast<int>(u), name, owned.begin, t.numel(), host.data<float>());
      t.copy_from(host);
    }
  }
  engine_.optimizer().set_step_count(meta.state.at("optimizer").at("step_count").get<int64_t>());
  engine_.publish_loaded_params();
  if (stats) {
    stats->bytes = reader.bytes_read();
    stats->verify_s = point.verify_s;
    stats->read_s = seconds_since(start);
  }
  TrainingState s;
  s.step = meta.step;
  s.consumed_samples = meta.consumed_samples;
  s.global_batch = meta.global_batch;
  s.extra = meta.state;
  s.config_yaml = meta.config_yaml;
  return s;
}

}  // namespace zt
