#include "launch/report_html.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "core/error.h"
#include "launch/metrics.h"

namespace zt {

using nlohmann::json;

namespace {

constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr double kMiB = 1048576.0;
constexpr double kCharWidth = 6.4;  // rough width of an 11px glyph, for layout only
constexpr int kWideChart = 800;     // charts of full-width figures

const char* color(size_t i) { return kPalette[i % std::size(kPalette)]; }

// ---- numbers and text -------------------------------------------------------------------

// A finite number at obj[key], or nothing when absent or of another type.
std::optional<double> number(const json& obj, const std::string& key) {
  if (!obj.is_object()) return std::nullopt;
  const auto it = obj.find(key);
  if (it == obj.end() || !it->is_number()) return std::nullopt;
  const double v = it->get<double>();
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

const json* object_at(const json& obj, const std::string& key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  return it != obj.end() && it->is_object() ? &*it : nullptr;
}

const json* array_at(const json& obj, const std::string& key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  return it != obj.end() && it->is_array() ? &*it : nullptr;
}

// Three significant digits without exponents for everyday magnitudes.
std::string format_value(double v) {
  const double a = std::abs(v);
  if (a >= 100 || a == 0) return fmt::format("{:.0f}", v);
  if (a >= 10) return fmt::format("{:.1f}", v);
  if (a >= 1) return fmt::format("{:.2f}", v);
  if (a >= 1e-3) return fmt::format("{:.3g}", v);
  return fmt::format("{:.2e}", v);
}

std::string format_optional(const std::optional<double>& v, const char* pattern = "{:.4f}") {
  return v ? fmt::format(fmt::runtime(pattern), *v) : "–";
}

// Tick labels carry just the digits the tick spacing needs: "0.25", "40k", "0.00095".
std::string tick_label(double v, double step) {
  if (std::abs(v) < step * 1e-6) return "0";
  const double a = std::max(std::abs(v), step);
  if (step >= 1000 && a >= 1e4) {
    const double unit = a >= 1e9 ? 1e9 : a >= 1e6 ? 1e6 : 1e3;
    const char* suffix = unit == 1e9 ? "G" : unit == 1e6 ? "M" : "k";
    const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step / unit) + 1e-9)));
    return fmt::format("{:.{}f}{}", v / unit, decimals, suffix);
  }
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  if (decimals > 6) return fmt::format("{:.2e}", v);
  return fmt::format("{:.{}f}", v, decimals);
}

// ---- axes, legend, layout ---------------------------------------------------------------

double nice_step(double lo, double hi, int target, bool integer) {
  const double raw = (hi - lo) / std::max(target, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  return integer ? std::max(step, 1.0) : step;
}

std::vector<double> ticks_between(double lo, double hi, double step) {
  std::vector<double> out;
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9 && out.size() < 100; ++k)
    out.push_back(k * step);
  return out;
}

struct Axis {
  double lo = 0, hi = 1, step = 1;
  std::vector<double> ticks;
  double frac(double v) const { return (v - lo) / (hi - lo); }
};

// `snap` widens the range to whole ticks (value axes); step axes keep the data's range.
Axis make_axis(double lo, double hi, bool snap, bool integer) {
  if (!(hi > lo)) {
    // At a huge step a pad of 1 vanishes in rounding; the relative floor keeps the range open.
    const double pad = std::max(integer ? 1 : lo == 0 ? 1 : std::abs(lo) * 0.1, std::abs(lo) * 1e-9);
    lo -= pad;
    hi += pad;
  }
  Axis axis;
  axis.step = nice_step(lo, hi, 5, integer);
  axis.lo = snap ? std::floor(lo / axis.step + 1e-9) * axis.step : lo;
  axis.hi = snap ? std::ceil(hi / axis.step - 1e-9) * axis.step : hi;
  axis.ticks = ticks_between(axis.lo, axis.hi, axis.step);
  return axis;
}

struct LegendItem {
  std::string name;
  const char* color;
  bool box;  // a swatch for bars, a line for series
};

struct Legend {
  std::string svg;
  double height = 0;
};

// Items left to right, wrapping to a new line when they would pass `max_w`.
Legend legend(const std::vector<LegendItem>& items, double x0, double y0, double max_w) {
  Legend out;
  double x = x0, y = y0 + 10;
  for (const LegendItem& it : items) {
    const double w = 22 + kCharWidth * static_cast<double>(it.name.size()) + 14;
    if (x > x0 && x + w > x0 + max_w) {
      x = x0;
      y += 16;
    }
    out.svg += it.box ? fmt::format(R"(<rect x="{:.1f}" y="{:.1f}" width="14" height="10" fill="{}"/>)", x, y - 8, it.color)
                      : fmt::format(R"(<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="{}" stroke-width="2"/>)",
                                    x, y - 3, x + 16, y - 3, it.color);
    out.svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}">{}</text>)", x + 20, y, html_escape(it.name));
    x += w;
  }
  out.height = items.empty() ? 0 : y - y0 + 8;
  return out;
}

std::string svg_open(int width, double height, const std::string& label) {
  return fmt::format(R"(<svg viewBox="0 0 {} {:.0f}" width="{}" height="{:.0f}" role="img" aria-label="{}">)", width,
                     height, width, height, html_escape(label));
}

std::string no_data_svg(int width, int height, const std::string& label) {
  return svg_open(width, height, label) +
         fmt::format(R"(<text class="none" x="{}" y="{}" text-anchor="middle">no data</text></svg>)", width / 2,
                     height / 2);
}

// Per pixel column keeps the first, lowest, highest and last point: a long run draws the
// same picture with a bounded number of points.
std::vector<ChartPoint> decimate(const std::vector<ChartPoint>& px) {
  std::vector<ChartPoint> out;
  for (size_t i = 0; i < px.size();) {
    // j starts past i so that a NaN position (never equal to itself) still advances.
    size_t j = i + 1, lo = i, hi = i;
    const double column = std::floor(px[i].x);
    for (; j < px.size() && std::floor(px[j].x) == column; ++j) {
      if (px[j].y < px[lo].y) lo = j;
      if (px[j].y > px[hi].y) hi = j;
    }
    std::vector<size_t> keep = {i, lo, hi, j - 1};
    std::sort(keep.begin(), keep.end());
    keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
    for (size_t k : keep) out.push_back(px[k]);
    i = j;
  }
  return out;
}

}  // namespace

// ---- public building blocks -------------------------------------------------------------

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target, bool integer) {
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return {lo};
  return ticks_between(lo, hi, nice_step(lo, hi, target, integer));
}

std::string svg_line_chart(const LineChart& c) {
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (const ChartSeries& s : c.series)
    for (const ChartPoint& p : s.points) {
      xmin = std::min(xmin, p.x), xmax = std::max(xmax, p.x);
      ymin = std::min(ymin, p.y), ymax = std::max(ymax, p.y);
    }
  const std::string label = c.y_label + " vs " + c.x_label;
  if (!(xmin <= xmax)) return no_data_svg(c.width, c.height, label);

  const Axis ax = make_axis(xmin, xmax, false, c.integer_x);
  const Axis ay = make_axis(ymin, ymax, true, false);
  size_t widest = 0;
  for (double t : ay.ticks) widest = std::max(widest, tick_label(t, ay.step).size());
  const double left = 30 + kCharWidth * static_cast<double>(widest), right = 16, bottom = 40;
  std::vector<LegendItem> items;
  for (size_t i = 0; i < c.series.size(); ++i)
    if (!c.series[i].points.empty()) items.push_back({c.series[i].name, color(i), false});
  const Legend leg = c.series.size() > 1 ? legend(items, left, 4, c.width - left - right) : Legend{};
  const double top = 12 + leg.height;
  const double pw = std::max(c.width - left - right, 80.0), ph = std::max(c.height - top - bottom, 60.0);
  auto px = [&](double x) { return left + ax.frac(x) * pw; };
  auto py = [&](double y) { return top + ph - ay.frac(y) * ph; };

  std::string svg = svg_open(c.width, c.height, label);
  svg += fmt::format(R"(<rect class="plot" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}"/>)", left, top, pw, ph);
  for (double t : ay.ticks)
    svg += fmt::format(R"(<line class="grid" x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}"/>)"
                       R"(<text x="{:.1f}" y="{:.1f}" text-anchor="end">{}</text>)",
                       left, py(t), left + pw, py(t), left - 6, py(t) + 4, tick_label(t, ay.step));
  for (double t : ax.ticks)
    svg += fmt::format(R"(<line class="grid" x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}"/>)"
                       R"(<text x="{:.1f}" y="{:.1f}" text-anchor="middle">{}</text>)",
                       px(t), top, px(t), top + ph, px(t), top + ph + 15, tick_label(t, ax.step));
  svg += fmt::format(R"(<path class="axis" d="M{:.1f} {:.1f}V{:.1f}H{:.1f}"/>)", left, top, top + ph, left + pw);
  svg += fmt::format(R"(<text class="label" x="{:.1f}" y="{}" text-anchor="middle">{}</text>)", left + pw / 2,
                     c.height - 6, html_escape(c.x_label));
  svg += fmt::format(R"svg(<text class="label" x="14" y="{0:.1f}" text-anchor="middle" transform="rotate(-90 14 {0:.1f})">{1}</text>)svg",
                     top + ph / 2, html_escape(c.y_label));
  for (double m : c.x_markers) {
    if (m < ax.lo || m > ax.hi) continue;
    svg += fmt::format(R"(<line class="marker" x1="{0:.1f}" y1="{1:.1f}" x2="{0:.1f}" y2="{2:.1f}"/>)"
                       R"(<text class="marker" x="{3:.1f}" y="{4:.1f}">{5}</text>)",
                       px(m), top, top + ph, px(m) + 3, top + 11, html_escape(c.marker_label));
  }
  for (size_t i = 0; i < c.series.size(); ++i) {
    const ChartSeries& s = c.series[i];
    svg += fmt::format(R"(<g class="series" data-series="{}" stroke="{}" fill="{}">)", html_escape(s.name), color(i),
                       color(i));
    std::vector<ChartPoint> pts;
    for (const ChartPoint& p : s.points) pts.push_back({px(p.x), py(p.y)});
    pts = decimate(pts);
    if (pts.size() > 1) {
      svg += R"(<polyline fill="none" stroke-width="1.6" points=")";
      for (const ChartPoint& p : pts) svg += fmt::format("{:.1f},{:.1f} ", p.x, p.y);
      svg.back() = '"';
      svg += "/>";
    }
    if ((s.markers && s.points.size() <= 500) || s.points.size() == 1)
      for (const ChartPoint& p : s.points)
        svg += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="3"><title>{} {}: {}</title></circle>)", px(p.x),
                           py(p.y), html_escape(c.x_label), c.integer_x ? fmt::format("{:.0f}", p.x) : format_value(p.x),
                           format_value(p.y));
    svg += "</g>";
  }
  return svg + leg.svg + "</svg>";
}

std::string svg_bar_chart(const BarChart& c) {
  const std::string label = "bars: " + c.value_label;
  if (c.rows.empty()) return no_data_svg(c.width, 120, label);
  size_t longest = 0;
  double max_total = 0;
  for (const BarRow& r : c.rows) {
    longest = std::max(longest, r.label.size());
    double total = 0;
    for (double v : r.values) total += std::max(v, 0.0);
    max_total = std::max(max_total, total);
  }
  const double left = std::max(48.0, kCharWidth * static_cast<double>(longest) + 14), right = 56;
  const double row_h = 18, gap = 9, bottom = 40;
  std::vector<LegendItem> items;
  for (size_t i = 0; i < c.segments.size(); ++i) items.push_back({c.segments[i], color(i), true});
  const Legend leg = c.segments.size() > 1 ? legend(items, left, 4, c.width - left - right) : Legend{};
  const double top = 10 + leg.height;
  const double pw = std::max(c.width - left - right, 80.0);
  const double ph = static_cast<double>(c.rows.size()) * (row_h + gap) + gap;
  const double height = top + ph + bottom;
  const Axis ax = make_axis(0, max_total > 0 ? max_total : 1, true, false);
  auto px = [&](double v) { return left + ax.frac(v) * pw; };

  std::string svg = svg_open(c.width, height, label);
  for (double t : ax.ticks)
    svg += fmt::format(R"(<line class="grid" x1="{0:.1f}" y1="{1:.1f}" x2="{0:.1f}" y2="{2:.1f}"/>)"
                       R"(<text x="{0:.1f}" y="{3:.1f}" text-anchor="middle">{4}</text>)",
                       px(t), top, top + ph, top + ph + 15, tick_label(t, ax.step));
  svg += fmt::format(R"(<path class="axis" d="M{:.1f} {:.1f}V{:.1f}H{:.1f}"/>)", left, top, top + ph, left + pw);
  svg += fmt::format(R"(<text class="label" x="{:.1f}" y="{:.1f}" text-anchor="middle">{}</text>)", left + pw / 2,
                     height - 6, html_escape(c.value_label));
  for (size_t r = 0; r < c.rows.size(); ++r) {
    const BarRow& row = c.rows[r];
    const double y = top + gap + static_cast<double>(r) * (row_h + gap);
    svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" text-anchor="end">{}</text>)", left - 6, y + 13,
                       html_escape(row.label));
    double at = 0;
    for (size_t s = 0; s < row.values.size(); ++s) {
      const double v = std::max(row.values[s], 0.0);
      const std::string name = s < c.segments.size() ? c.segments[s] : c.value_label;
      svg += fmt::format(R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{}" fill="{}"><title>{}: {}</title></rect>)",
                         px(at), y, px(at + v) - px(at), row_h, color(s), html_escape(row.label + " " + name),
                         format_value(v));
      at += v;
    }
    svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}">{}</text>)", px(at) + 4, y + 13, format_value(at));
  }
  return svg + leg.svg + "</svg>";
}

// ---- the run as plotted -----------------------------------------------------------------

namespace {

struct Entry {
  const json* rec;
  double step;
  int segment;  // which process wrote it: a resume starts a new one
};

struct Run {
  std::vector<Entry> entries;
  std::vector<double> resumes;  // first step of each resumed segment
  std::map<int, double> segment_elapsed;  // last elapsed_s of each segment, replaced records included
};

// Records in step order. A resumed run appends records; where it went back to an earlier
// checkpoint the later records win, so each step appears once. A fall in elapsed_s without a
// fall in step also marks a restart, as every timer then starts again from zero.
Run select_records(const std::vector<json>& records) {
  Run run;
  int segment = 0;
  std::optional<double> last_elapsed;
  for (const json& rec : records) {
    const auto step = number(rec, "step");
    if (!step && !number(rec, "loss")) continue;
    const double x = step ? *step : run.entries.empty() ? 1 : run.entries.back().step + 1;
    bool restarted = false;
    while (!run.entries.empty() && run.entries.back().step >= x) {
      run.entries.pop_back();
      restarted = true;
    }
    const auto elapsed = number(rec, "elapsed_s");
    if (elapsed && last_elapsed && *elapsed < *last_elapsed) restarted = true;
    if (restarted) {
      ++segment;
      std::erase_if(run.resumes, [&](double r) { return r >= x; });
      if (!run.entries.empty()) run.resumes.push_back(x);
    }
    if (elapsed) last_elapsed = run.segment_elapsed[segment] = *elapsed;
    run.entries.push_back({&rec, x, segment});
  }
  return run;
}

ChartSeries series_of(const Run& run, const std::string& key, const std::string& name, bool markers = false) {
  ChartSeries s{name, {}, markers};
  for (const Entry& e : run.entries)
    if (auto v = number(*e.rec, key)) s.points.push_back({e.step, *v});
  return s;
}

std::optional<double> last_number(const Run& run, const std::string& key) {
  for (auto it = run.entries.rbegin(); it != run.entries.rend(); ++it)
    if (auto v = number(*it->rec, key)) return v;
  return std::nullopt;
}

// The newest entry with an object (or array) at `key`.
const Entry* last_with(const Run& run, const std::string& key, bool array = false) {
  for (auto it = run.entries.rbegin(); it != run.entries.rend(); ++it)
    if (array ? array_at(*it->rec, key) != nullptr : object_at(*it->rec, key) != nullptr) return &*it;
  return nullptr;
}

std::optional<double> median(std::vector<double> v) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::optional<double> median_of(const Run& run, const std::string& key) {
  std::vector<double> v;
  for (const ChartPoint& p : series_of(run, key, key).points) v.push_back(p.y);
  return median(v);
}

// Wall time over every segment, as each segment's timer restarts at zero.
std::optional<double> wall_seconds(const Run& run) {
  if (run.segment_elapsed.empty()) return std::nullopt;
  double total = 0;
  for (const auto& [segment, seconds] : run.segment_elapsed) total += seconds;
  return total;
}

// "4" or, when a resume changed it, "4 → 2".
std::string history_of(const Run& run, const std::string& key) {
  std::vector<double> seen;
  for (const Entry& e : run.entries)
    if (auto v = number(*e.rec, key); v && (seen.empty() || seen.back() != *v)) seen.push_back(*v);
  if (seen.empty()) return "–";
  std::string out;
  for (double v : seen) out += (out.empty() ? "" : " → ") + fmt::format("{}", v);
  return out;
}

// Short runs keep a decimal: "0.8 s" says more than "1s".
std::string duration(double seconds) {
  return seconds < 10 ? fmt::format("{:.1f} s", seconds) : format_duration(seconds);
}

std::string resume_note(const Run& run) {
  if (run.resumes.empty()) return "";
  std::string steps;
  for (double r : run.resumes) steps += (steps.empty() ? "" : ", ") + fmt::format("{}", r);
  return fmt::format(" Dashed lines: the run resumed (first record at step {}).", steps);
}

// ---- page parts -------------------------------------------------------------------------

std::string figure(const std::string& id, const std::string& title, const std::string& caption,
                   const std::string& body, bool wide = false) {
  return fmt::format(R"(<figure id="{}"{}><figcaption><strong>{}</strong> {}</figcaption>{}</figure>)", id,
                     wide ? R"( class="wide")" : "", html_escape(title), html_escape(caption), body);
}

LineChart step_chart(const Run& run, const std::string& y_label, std::vector<ChartSeries> series) {
  LineChart c;
  c.x_label = "step";
  c.y_label = y_label;
  c.series = std::move(series);
  c.x_markers = run.resumes;
  return c;
}

std::string loss_figure(const Run& run) {
  const LineChart c =
      step_chart(run, "loss", {series_of(run, "loss", "train loss"), series_of(run, "val_loss", "val loss", true)});
  return figure("loss", "Loss",
                "Mean train loss of each logged step; val loss on evaluation steps." + resume_note(run),
                svg_line_chart(c));
}

std::string lr_figure(const Run& run) {
  return figure("lr", "Learning rate", "The schedule's value at each logged step.",
                svg_line_chart(step_chart(run, "learning rate", {series_of(run, "lr", "lr")})));
}

std::string grad_norm_figure(const Run& run) {
  return figure("grad-norm", "Gradient norm", "Global L2 norm of the gradients before clipping.",
                svg_line_chart(step_chart(run, "grad norm", {series_of(run, "grad_norm", "grad norm")})));
}

std::string throughput_figure(const Run& run) {
  const auto tok = median_of(run, "tokens_per_s");
  const auto gflops = median_of(run, "gflops");
  const std::string caption = fmt::format(
      "Tokens per second over each logging window; median {} tokens/s, {} GFLOP/s (model FLOPs).",
      tok ? format_count(*tok) : "–", gflops ? format_value(*gflops) : "–");
  return figure("throughput", "Throughput", caption,
                svg_line_chart(step_chart(run, "tokens/s", {series_of(run, "tokens_per_s", "tokens/s")})));
}

// MoE runs: each MoE layer's least over most loaded expert per step (1 is a perfect balance)
// with the aux loss, and the routed tokens per expert of the last logged step.
std::string moe_figure(const Run& run) {
  std::vector<ChartSeries> ratios;
  for (const Entry& e : run.entries) {
    const json* r = array_at(*e.rec, "expert_load_ratio");
    if (!r) continue;
    for (size_t l = 0; l < r->size(); ++l) {
      if (ratios.size() <= l) ratios.push_back({fmt::format("MoE layer {} min/max load", l), {}, false});
      if ((*r)[l].is_number()) ratios[l].points.push_back({e.step, (*r)[l].get<double>()});
    }
  }
  ratios.push_back(series_of(run, "aux_loss", "aux loss"));
  BarChart load;
  load.value_label = "routed tokens per expert, last logged step";
  if (const Entry* last = last_with(run, "expert_tokens", true)) {
    const json& layers = *array_at(*last->rec, "expert_tokens");
    for (size_t l = 0; l < layers.size(); ++l) {
      if (!layers[l].is_array()) continue;
      for (size_t e = 0; e < layers[l].size(); ++e)
        if (layers[l][e].is_number())
          load.rows.push_back({fmt::format("layer {} expert {}", l, e), {layers[l][e].get<double>()}});
    }
  }
  return figure("moe", "Expert load",
                "Per MoE layer: tokens routed to the least loaded expert over those of the most loaded one (1 is "
                "balanced), and the load-balancing aux loss added to the objective; bars: tokens per expert.",
                R"(<div class="pair">)" + svg_line_chart(step_chart(run, "load ratio / aux loss", ratios)) +
                    svg_bar_chart(load) + "</div>",
                true);
}

// Allocator tags in the order the trainer reports them, then any others.
std::vector<std::string> memory_tags(const json& memory) {
  std::vector<std::string> tags;
  for (const char* t : {"params", "grads", "optimizer", "activations", "comm", "workspace", "other"})
    if (number(memory, t)) tags.push_back(t);
  for (const auto& [key, value] : memory.items())
    if (key != "peak_total" && value.is_number() && std::find(tags.begin(), tags.end(), key) == tags.end())
      tags.push_back(key);
  return tags;
}

BarChart rank_peak_chart(const Run& run) {
  BarChart c;
  c.value_label = "peak MiB per rank";
  if (const Entry* e = last_with(run, "ranks", true)) {
    for (const json& r : *array_at(*e->rec, "ranks"))
      if (auto peak = number(r, "peak_bytes"))
        c.rows.push_back({fmt::format("rank {}", number(r, "rank").value_or(c.rows.size())), {*peak / kMiB}});
  } else if (const Entry* m = last_with(run, "memory")) {
    if (auto peak = number(*object_at(*m->rec, "memory"), "peak_total")) c.rows.push_back({"rank 0", {*peak / kMiB}});
  }
  return c;
}

std::string memory_figure(const Run& run) {
  BarChart tags_chart;
  tags_chart.value_label = "live MiB by allocator tag";
  std::string peak_note;
  if (const Entry* e = last_with(run, "memory")) {
    const json& memory = *object_at(*e->rec, "memory");
    for (const std::string& tag : memory_tags(memory)) tags_chart.rows.push_back({tag, {*number(memory, tag) / kMiB}});
    if (auto peak = number(memory, "peak_total"))
      peak_note = fmt::format(" Rank 0's peak at step {}: {:.2f} MiB.", e->step, *peak / kMiB);
  }
  const std::string caption = "Left: each rank's allocator peak (last record with per-rank data). Right: rank 0's "
                              "live bytes per allocator tag at the last logged step." + peak_note;
  return figure("memory", "Memory", caption,
                R"(<div class="pair">)" + svg_bar_chart(rank_peak_chart(run)) + svg_bar_chart(tags_chart) + "</div>",
                true);
}

std::string table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::string out = "<table><thead><tr>";
  for (const std::string& h : header) out += "<th>" + html_escape(h) + "</th>";
  out += "</tr></thead><tbody>";
  for (const auto& row : rows) {
    out += "<tr>";
    for (const std::string& cell : row) out += "<td>" + html_escape(cell) + "</td>";
    out += "</tr>";
  }
  return out + "</tbody></table>";
}

// Seconds shown in ms below one second, so short steps keep their digits.
struct TimeUnit {
  double scale;
  const char* name;
};
TimeUnit time_unit(double max_seconds) { return max_seconds < 1 ? TimeUnit{1e3, "ms"} : TimeUnit{1, "s"}; }

std::string ms(const std::optional<double>& seconds) {
  return seconds ? fmt::format("{:.2f}", *seconds * 1e3) : "–";
}

struct Breakdown {
  std::string caption;
  std::string body;
};

// Timers on two threads can put exposed a little above total: that is nothing hidden.
double hidden_share(double total, double exposed) { return std::clamp(1 - exposed / total, 0.0, 1.0); }

std::string source_note(const json& profile) {
  const auto it = profile.find("peak_source");
  return it != profile.end() && it->is_string() && !it->get<std::string>().empty()
             ? " (" + it->get<std::string>() + ")"
             : "";
}

Breakdown profile_breakdown(const Entry& e) {
  const json& profile = *object_at(*e.rec, "profile");
  const json& ranks = *array_at(profile, "ranks");
  std::vector<std::string> categories = {"data",         "forward",    "backward", "recompute", "optimizer",
                                         "comm_exposed", "checkpoint", "eval",     "other"};
  for (const json& r : ranks)
    if (const json* cats = object_at(r, "categories"))
      for (const auto& [key, value] : cats->items())
        if (std::find(categories.begin(), categories.end(), key) == categories.end()) categories.push_back(key);
  // Only categories that took time on some rank: the others would be legend entries without a bar.
  std::erase_if(categories, [&](const std::string& cat) {
    return std::none_of(ranks.begin(), ranks.end(), [&](const json& r) {
      const json* cats = object_at(r, "categories");
      return cats && number(*cats, cat).value_or(0) > 0;
    });
  });

  double longest = 0;
  for (const json& r : ranks) longest = std::max(longest, number(r, "step_s").value_or(0));
  const TimeUnit unit = time_unit(longest);
  BarChart chart;
  chart.width = kWideChart;
  chart.value_label = fmt::format("{} per step", unit.name);
  chart.segments = categories;
  std::vector<std::vector<std::string>> rows;
  const auto peak = number(profile, "peak_gflops");
  for (const json& r : ranks) {
    const std::string name = fmt::format("rank {}", number(r, "rank").value_or(rows.size()));
    const json* cats = object_at(r, "categories");
    BarRow bar{name, {}};
    for (const std::string& cat : categories)
      bar.values.push_back(cats ? number(*cats, cat).value_or(0) * unit.scale : 0);
    chart.rows.push_back(bar);
    const auto total = number(r, "comm_total_s"), exposed = number(r, "comm_exposed_s");
    const auto mfu = number(r, "mfu");
    const auto gflops = number(r, "gflops");
    rows.push_back({name, ms(number(r, "step_s")), ms(total), ms(exposed),
                    total && exposed && *total > 0 ? fmt::format("{:.0f}%", 100 * hidden_share(*total, *exposed)) : "–",
                    gflops ? format_value(*gflops) : "–", mfu ? fmt::format("{:.1f}%", 100 * *mfu) : "–"});
  }
  const std::string caption = fmt::format(
      "Time per step by category on each rank, averaged over the profiled steps {}–{}; MFU against a peak of {} "
      "GFLOP/s per rank{}. Hidden: the share of communication overlapped by compute.",
      format_optional(number(profile, "start_step"), "{}"), format_optional(number(profile, "end_step"), "{}"),
      peak ? format_value(*peak) : "–", source_note(profile));
  return {caption,
          svg_bar_chart(chart) +
              table({"rank", "step ms", "comm total ms", "comm exposed ms", "hidden", "GFLOP/s", "MFU"}, rows)};
}

// Without a profile: the cumulative comm timers against wall time since the process started.
Breakdown timer_breakdown(const Run& run, const Entry& e) {
  const json& ranks = *array_at(*e.rec, "ranks");
  const auto elapsed = number(*e.rec, "elapsed_s");
  BarChart chart;
  chart.width = kWideChart;
  chart.value_label = "seconds since the process started";
  chart.segments = {"comm exposed", "comm overlapped by compute", "rest of wall time (compute, data, logging)"};
  std::vector<std::vector<std::string>> rows;
  for (const json& r : ranks) {
    const std::string name = fmt::format("rank {}", number(r, "rank").value_or(rows.size()));
    const double busy = number(r, "comm_busy_s").value_or(0), exposed = number(r, "comm_exposed_s").value_or(0);
    const double hidden = std::max(busy - exposed, 0.0);
    const double rest = elapsed ? std::max(*elapsed - exposed - hidden, 0.0) : 0;
    chart.rows.push_back({name, {exposed, hidden, rest}});
    rows.push_back({name, fmt::format("{:.3f}", busy), fmt::format("{:.3f}", exposed),
                    elapsed && *elapsed > 0 ? fmt::format("{:.1f}%", 100 * exposed / *elapsed) : "–"});
  }
  const std::string wall = elapsed ? "over " + duration(*elapsed) + " of wall time" : "(wall time not logged)";
  const std::string caption = fmt::format(
      "No profile record in metrics.jsonl: derived from the cumulative communication timers of the record at "
      "step {} {}{}. Busy counts every collective's duration, exposed the time ranks waited for one; the rest "
      "is everything else.",
      e.step, wall, run.resumes.empty() ? "" : " since the last resume");
  return {caption,
          svg_bar_chart(chart) + table({"rank", "comm busy s", "comm exposed s", "exposed share of wall"}, rows)};
}

std::string comm_volume(const Run& run) {
  const Entry* e = last_with(run, "comm_bytes_sent");
  if (!e) return "";
  const json& bytes = *object_at(*e->rec, "comm_bytes_sent");
  const json* calls = object_at(*e->rec, "comm_calls");
  std::vector<std::vector<std::string>> rows;
  for (const auto& [op, value] : bytes.items())
    if (auto b = number(bytes, op))
      rows.push_back({op, fmt::format("{:.2f}", *b / kMiB), calls ? format_optional(number(*calls, op), "{}") : "–"});
  return table({"collective", "MiB sent (total)", "calls (total)"}, rows);
}

std::string comm_figure(const Run& run) {
  Breakdown b;
  if (const Entry* p = last_with(run, "profile"); p && array_at(*object_at(*p->rec, "profile"), "ranks"))
    b = profile_breakdown(*p);
  else if (const Entry* e = last_with(run, "ranks", true))
    b = timer_breakdown(run, *e);
  else
    b = {"No communication timers in the metrics.", no_data_svg(kWideChart, 120, "communication")};
  return figure("comm", "Communication and compute", b.caption, b.body + comm_volume(run), true);
}

std::string summary(const std::string& run_name, const Run& run) {
  const auto tok = median_of(run, "tokens_per_s");
  const auto wall = wall_seconds(run);
  const auto tokens = last_number(run, "tokens");
  std::optional<double> peak;
  for (const BarRow& r : rank_peak_chart(run).rows) peak = std::max(peak.value_or(0), r.values[0]);
  const std::vector<std::pair<std::string, std::string>> items = {
      {"world size", history_of(run, "world_size")},
      {"ZeRO stage", history_of(run, "zero_stage")},
      {"steps", fmt::format("{}", run.entries.back().step)},
      {"final loss", format_optional(last_number(run, "loss"))},
      {"final val loss", format_optional(last_number(run, "val_loss"))},
      {"tokens/s (median)", tok ? format_count(*tok) : "–"},
      {"tokens", tokens ? format_count(*tokens) : "–"},
      {"wall time", wall ? duration(*wall) : "–"},
      {"peak memory", peak ? fmt::format("{:.2f} MiB", *peak) : "–"},
      {"resumes", fmt::format("{}", run.resumes.size())},
  };
  std::string out = "<header><h1>" + html_escape(run_name) + "</h1><p class=\"sub\">zerotrain run report</p><dl class=\"summary\">";
  for (const auto& [k, v] : items) out += "<div><dt>" + html_escape(k) + "</dt><dd>" + html_escape(v) + "</dd></div>";
  return out + "</dl></header>";
}

constexpr const char* kStyle = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1f2328;background:#fff;max-width:1200px;margin:24px auto;padding:0 16px}
h1{font-size:24px;margin:0}h2{font-size:16px;margin:24px 0 8px}.sub{margin:0;color:#57606a}
.summary{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:8px;margin:16px 0}
.summary div{border:1px solid #d0d7de;border-radius:6px;padding:6px 10px}
.summary dt{font-size:12px;color:#57606a}.summary dd{margin:0;font-size:17px;font-weight:600}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:16px}
figure{margin:0;border:1px solid #d0d7de;border-radius:6px;padding:12px;min-width:0}
figure.wide{grid-column:1/-1}figcaption{font-size:13px;color:#57606a;margin-bottom:8px}
figcaption strong{color:#1f2328;margin-right:4px}
.pair{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}
svg{display:block;max-width:100%;height:auto;font:11px system-ui,sans-serif}
svg text{fill:#57606a}svg .label{fill:#1f2328}svg .none{font-size:14px}
svg .plot{fill:#fafbfc}svg .grid{stroke:#eaeef2}svg .axis{stroke:#8c959f;fill:none}
svg .marker{stroke:#8c959f;stroke-dasharray:4 3}svg text.marker{stroke:none;fill:#8c959f}
table{border-collapse:collapse;font-size:12px;margin-top:10px;font-variant-numeric:tabular-nums}
th,td{padding:3px 10px;border-bottom:1px solid #eaeef2;text-align:right}th:first-child,td:first-child{text-align:left}
pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:12px;overflow:auto;font-size:12px}
)";

}  // namespace

Report render_report(const ReportInput& input) {
  const Run run = select_records(input.records);
  if (run.entries.empty()) fail("no usable record (none has a step or a loss)");
  std::vector<std::string> figures = {loss_figure(run),       lr_figure(run),     grad_norm_figure(run),
                                      throughput_figure(run), memory_figure(run), comm_figure(run)};
  if (last_with(run, "expert_tokens", true)) figures.push_back(moe_figure(run));
  Report report;
  // A step is a double read from metrics.jsonl: a hand-edited one may be past int64's range.
  report.steps = static_cast<int64_t>(std::clamp(run.entries.back().step, -9e18, 9e18));
  report.plots = static_cast<int>(figures.size());
  std::string& html = report.html;
  html = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
         "content=\"width=device-width,initial-scale=1\"><title>" +
         html_escape(input.run_name) + " · zt report</title><style>" + kStyle + "</style></head><body>\n";
  html += summary(input.run_name, run) + "\n<main class=\"figures\">\n";
  for (const std::string& f : figures) html += f + "\n";
  html += "</main>\n";
  if (!input.config_text.empty())
    html += "<section id=\"config\"><h2>config.yaml</h2><pre>" + html_escape(input.config_text) + "</pre></section>\n";
  html += "</body></html>\n";
  return report;
}

}  // namespace zt
