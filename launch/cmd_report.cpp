#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/fileio.h"
#include "launch/cli.h"
#include "launch/commands.h"
#include "launch/report_html.h"

namespace zt {

namespace fs = std::filesystem;

namespace {

// One JSON object per non-blank line; a bad line fails naming file:line.
std::vector<nlohmann::json> read_metrics(const fs::path& path) {
  std::ifstream in(path);
  if (!in) fail("{}: no such file (is this a zt run directory?)", path.string());
  std::vector<nlohmann::json> records;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json rec;
    try {
      rec = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      fail("{}:{}: malformed JSON (column {})", path.string(), line_no, e.byte);
    } catch (const nlohmann::json::exception& e) {  // out_of_range: a number past double's range
      fail("{}:{}: malformed JSON ({})", path.string(), line_no, e.what());
    }
    if (!rec.is_object()) fail("{}:{}: expected a JSON object, got {}", path.string(), line_no, rec.type_name());
    records.push_back(std::move(rec));
  }
  if (records.empty()) fail("{}: empty, no metrics logged yet", path.string());
  return records;
}

// The run's name is its directory's name, also for "runs/x/" and ".".
std::string run_name(const fs::path& dir) {
  fs::path p = fs::absolute(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

// Through a temp file and a rename: a failed write leaves neither the page nor the temp file.
void write_page(const fs::path& out, const std::string& html) {
  try {
    write_file_atomic(out, html);
  } catch (const Error&) {
    std::error_code ec;
    fs::remove(out.string() + ".tmp", ec);
    throw;
  }
}

}  // namespace

// zt report RUN_DIR [-o report.html]
int cmd_report(const Args& args) {
  CliArgs cli("report", args, {"o", "output"});
  cli.expect_positionals(1, 1);
  const fs::path dir = cli.positional(0, "RUN_DIR");
  if (!fs::is_directory(dir)) fail("{}: no such run directory", dir.string());
  const fs::path metrics = dir / "metrics.jsonl";
  ReportInput input{run_name(dir), read_metrics(metrics), ""};
  if (fs::exists(dir / "config.yaml")) input.config_text = read_text_file(dir / "config.yaml");

  Report report;
  try {
    report = render_report(input);
  } catch (const Error& e) {
    fail("{}: {}", metrics.string(), e.what());
  }
  const fs::path out = cli.get("o").value_or(cli.get_or("output", (dir / "report.html").string()));
  if (out.empty()) fail("zt report: -o needs a file name");
  write_page(out, report.html);
  std::printf("report: %s (%lld steps, %d plots)\n", out.string().c_str(), static_cast<long long>(report.steps),
              report.plots);
  return 0;
}

}  // namespace zt
