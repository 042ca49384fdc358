// metrics.jsonl: one JSON object per logged step, flushed as written so a crashed or
// preempted run keeps everything it logged.
#pragma once
#include <string>

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

// "1h02m", "3m05s", "42s"
std::string format_duration(double seconds);
// "12.3k", "4.56M"
std::string format_count(double value);

}  // namespace zt
