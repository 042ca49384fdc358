// metrics.jsonl: one JSON object per logged step, flushed as written so a crashed or
// preempted run keeps everything it logged.
#pragma once
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace zt {

class MetricsWriter {
 public:
  MetricsWriter() = default;
  explicit MetricsWriter(const std::string& path, bool append = false);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;
  void write(const nlohmann::json& record);  // fails naming the file and errno

 private:
  std::string path_;
  int fd_ = -1;
};

// Appends one record with as many write() calls as it takes; a failed write (a full disk) is
// an error naming `path`, and the part of the record that reached the file is cut off, so the
// file stays whole records.
void append_record(int fd, std::string_view bytes, const std::string& path);

// "1h02m", "3m05s", "42s"
std::string format_duration(double seconds);
// "12.3k", "4.56M"
std::string format_count(double value);

}  // namespace zt
