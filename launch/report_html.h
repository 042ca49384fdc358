// `zt report`: one self-contained HTML page (inline CSS and SVG, no scripts, no external
// resources) drawn from a run's metrics.jsonl records and its config text.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace zt {

struct ReportInput {
  std::string run_name;
  std::vector<nlohmann::json> records;  // metrics.jsonl, one object per line, in file order
  std::string config_text;              // config.yaml, empty when the run has none
};

struct Report {
  std::string html;
  int64_t steps = 0;  // last logged step
  int plots = 0;      // <figure>s on the page
};

// Pure: the same input gives the same page. Missing or mistyped fields are skipped; records
// with neither `step` nor `loss` are ignored. Fails (zt::Error) only when no record is usable.
Report render_report(const ReportInput& input);

// --- SVG building blocks, reusable for other pages ---------------------------------------

std::string html_escape(std::string_view text);

// Round tick values (1, 2 or 5 times a power of ten) covering [lo, hi], about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target = 5, bool integer = false);

struct ChartPoint {
  double x = 0, y = 0;
};

struct ChartSeries {
  std::string name;
  std::vector<ChartPoint> points;  // in x order
  bool markers = false;            // dots on every point (sparse series such as val loss)
};

struct LineChart {
  std::string x_label, y_label;
  std::vector<ChartSeries> series;
  std::vector<double> x_markers;  // dashed vertical lines (where a run resumed)
  std::string marker_label = "resumed";
  bool integer_x = true;  // steps: no fractional ticks
  int width = 560, height = 280;
};

// Axes with tick labels, a legend when there are several series; "no data" when empty.
std::string svg_line_chart(const LineChart& chart);

struct BarRow {
  std::string label;
  std::vector<double> values;  // one per segment, stacked left to right
};

struct BarChart {
  std::string value_label;            // axis title, unit included
  std::vector<std::string> segments;  // legend names (a legend is drawn for two or more)
  std::vector<BarRow> rows;
  int width = 560;
};

// Horizontal (stacked) bars from zero, one per row, each segment titled with its value.
std::string svg_bar_chart(const BarChart& chart);

}  // namespace zt
