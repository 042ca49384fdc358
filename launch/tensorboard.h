// TensorBoard event files, written without TensorFlow: TFRecord framing around hand-encoded
// protobuf `Event` messages holding scalar summaries. TensorBoard reads every
// events.out.tfevents.* file of a directory, so a resumed run simply starts a new file; that
// file opens with a restart marker (SessionLog START, as TensorFlow writes on a restore) at
// the run's first step, which makes TensorBoard drop what older files logged from that step
// on: the steps a resume trains again are shown once, from the new run.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace zt {

using Scalars = std::vector<std::pair<std::string, float>>;  // (tag, value)

// TFRecord's checksum: CRC-32C rotated right by 15 bits plus a constant.
uint32_t masked_crc32c(const void* data, size_t n);
// One record: uint64 LE length, masked CRC of those 8 bytes, the data, masked CRC of the data.
std::string tfrecord(std::string_view data);
// Serialized tensorflow.Event: wall_time (field 1), step (2), and one of file_version (3), a
// Summary (5) of simple_value scalars, or a SessionLog (7) with status START. Fields at their
// default values are left out, as protobuf does.
std::string file_version_event(double wall_time);
std::string restart_event(double wall_time, int64_t step);
std::string scalars_event(double wall_time, int64_t step, const Scalars& scalars);

// The TensorBoard scalars of one metrics.jsonl record: train/loss, val/loss, optim/*,
// perf/*, comm/* and memory/* (nested objects flattened with '/').
Scalars tensorboard_scalars(const nlohmann::json& metrics_record);

// DIR/events.out.tfevents.<unix time>.<hostname> (with .<pid> added if that name is taken),
// for a run whose first step is first_step (1 unless resumed). Every write goes to the file
// at once, so a crashed run keeps what it logged.
class TensorBoardWriter {
 public:
  TensorBoardWriter(const std::filesystem::path& dir, int64_t first_step);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;
  void write(int64_t step, const Scalars& scalars);  // fails naming the file and errno
  const std::string& path() const { return path_; }

 private:
  void append(const std::string& record);
  std::string path_;
  int fd_ = -1;
};

}  // namespace zt
