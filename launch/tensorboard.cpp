#include "launch/tensorboard.h"
#include "launch/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "core/crc32c.h"
#include "core/error.h"

namespace zt {

namespace {

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

template <class T> void put_le(std::string& out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));  // x86 and ARM Linux are little-endian, as the format
  out.append(bytes, sizeof(T));
}

// Protobuf wire types: 0 varint, 1 64-bit, 2 length-delimited, 5 32-bit.
void put_key(std::string& out, int field, int wire_type) { put_varint(out, static_cast<uint64_t>(field << 3 | wire_type)); }

void put_bytes(std::string& out, int field, std::string_view bytes) {
  put_key(out, field, 2);
  put_varint(out, bytes.size());
  out.append(bytes);
}

std::string event_head(double wall_time, int64_t step) {
  std::string e;
  if (wall_time != 0) {
    put_key(e, 1, 1);
    put_le(e, wall_time);
  }
  if (step != 0) {
    put_key(e, 2, 0);
    put_varint(e, static_cast<uint64_t>(step));
  }
  return e;
}

double unix_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// metrics.jsonl keys and their tags; objects below a prefixed key are flattened under it.
// Left out: the step (the event's own field), constants of the run (world_size, zero_stage)
// and the per-rank and profile details.
constexpr std::pair<const char*, const char*> kTags[] = {
    {"loss", "train/loss"},
    {"val_loss", "val/loss"},
    {"lr", "optim/lr"},
    {"grad_norm", "optim/grad_norm"},
    {"clip_scale", "optim/clip_scale"},
    {"loss_scale", "optim/loss_scale"},
    {"skipped_steps", "optim/skipped_steps"},
    {"tokens_per_s", "perf/tokens_per_s"},
    {"gflops", "perf/gflops"},
    {"tokens", "perf/tokens"},
    {"elapsed_s", "perf/elapsed_s"},
    {"comm_busy_s", "comm/busy_s"},
    {"comm_exposed_s", "comm/exposed_s"},
    {"comm_bytes_sent", "comm/bytes_sent"},
    {"comm_calls", "comm/calls"},
    {"memory", "memory"},
    {"model_state_bytes", "memory/model_state"},
};

void flatten(const std::string& tag, const nlohmann::json& v, Scalars& out) {
  if (v.is_number()) {
    out.emplace_back(tag, static_cast<float>(v.get<double>()));
  } else if (v.is_object()) {
    for (const auto& [key, child] : v.items()) flatten(tag + "/" + key, child, out);
  }
}

}  // namespace

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t crc = crc32c(data, n);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string tfrecord(std::string_view data) {
  std::string out;
  put_le(out, static_cast<uint64_t>(data.size()));
  put_le(out, masked_crc32c(out.data(), 8));
  out.append(data);
  put_le(out, masked_crc32c(data.data(), data.size()));
  return out;
}

std::string file_version_event(double wall_time) {
  std::string e = event_head(wall_time, 0);
  put_bytes(e, 3, "brain.Event:2");
  return e;
}

std::string restart_event(double wall_time, int64_t step) {
  std::string session_log;
  put_key(session_log, 1, 0);
  put_varint(session_log, 1);  // SessionLog.START
  std::string e = event_head(wall_time, step);
  put_bytes(e, 7, session_log);
  return e;
}

std::string scalars_event(double wall_time, int64_t step, const Scalars& scalars) {
  std::string summary;
  for (const auto& [tag, value] : scalars) {
    std::string v;
    put_bytes(v, 1, tag);
    put_key(v, 2, 5);
    put_le(v, value);
    put_bytes(summary, 1, v);
  }
  std::string e = event_head(wall_time, step);
  put_bytes(e, 5, summary);
  return e;
}

Scalars tensorboard_scalars(const nlohmann::json& record) {
  Scalars out;
  for (const auto& [key, tag] : kTags)
    if (record.contains(key)) flatten(tag, record[key], out);
  return out;
}

TensorBoardWriter::TensorBoardWriter(const std::filesystem::path& dir, int64_t first_step) {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || !host[0]) std::strcpy(host, "localhost");
  const double now = unix_time();
  const std::string base = (dir / fmt::format("events.out.tfevents.{}.{}", static_cast<int64_t>(now), host)).string();
  path_ = base;
  // A run resumed within the same second must not write into the file before it.
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0 && errno == EEXIST) {
    path_ = fmt::format("{}.{}", base, getpid());
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  }
  if (fd_ < 0) fail("cannot open {} for writing: {}", path_, std::strerror(errno));
  append(tfrecord(file_version_event(now)));
  append(tfrecord(restart_event(now, first_step)));
}

TensorBoardWriter::~TensorBoardWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void TensorBoardWriter::write(int64_t step, const Scalars& scalars) {
  append(tfrecord(scalars_event(unix_time(), step, scalars)));
}

void TensorBoardWriter::append(const std::string& record) { append_record(fd_, record, path_); }

}  // namespace zt
