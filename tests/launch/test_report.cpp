// `zt report`: the HTML renderer on hand-made records, and the command end to end on a real
// run (a page that is self-contained and well formed, errors that name the file and line).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "launch/commands.h"
#include "launch/report_html.h"
#include "tests/support/errors.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::error_of;
using testing::read_file;
using testing::run_zt;
using testing::TempDir;

const char* const kFigures[] = {"loss", "lr", "grad-norm", "throughput", "memory", "comm"};

std::vector<nlohmann::json> parse_lines(const std::string& jsonl) {
  std::vector<nlohmann::json> out;
  std::istringstream in(jsonl);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::string render(const std::string& jsonl, const std::string& config = "") {
  return render_report({"run-a", parse_lines(jsonl), config}).html;
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// The markup of <figure id="id">, empty when absent.
std::string figure_of(const std::string& html, const std::string& id) {
  const size_t begin = html.find("<figure id=\"" + id + "\"");
  if (begin == std::string::npos) return "";
  return html.substr(begin, html.find("</figure>", begin) + 9 - begin);
}

// Points drawn for a series: its polyline's coordinate pairs, or its dots when it has none.
size_t series_points(const std::string& html, const std::string& name) {
  const size_t begin = html.find("data-series=\"" + name + "\"");
  if (begin == std::string::npos) return 0;
  const std::string group = html.substr(begin, html.find("</g>", begin) - begin);
  const size_t points = group.find("points=\"");
  if (points == std::string::npos) return count(group, "<circle");
  const std::string coords = group.substr(points + 8, group.find('"', points + 8) - points - 8);
  return count(coords, ",");
}

// The first tag closed out of order or left open, or "" when every element nests properly.
std::string unbalanced_tag(const std::string& html) {
  static const std::set<std::string> kVoid = {"meta", "br", "hr", "img", "input", "link"};
  std::vector<std::string> open;
  for (size_t at = html.find('<'); at != std::string::npos; at = html.find('<', at + 1)) {
    if (html.compare(at, 2, "<!") == 0) continue;  // doctype
    const size_t end = html.find('>', at);
    if (end == std::string::npos) return "unterminated tag";
    const std::string tag = html.substr(at + 1, end - at - 1);
    const bool closing = tag[0] == '/';
    const std::string name = tag.substr(closing, tag.find_first_of(" /\n", closing) - closing);
    if (closing) {
      if (open.empty() || open.back() != name) return "</" + name + ">";
      open.pop_back();
    } else if (tag.back() != '/' && !kVoid.count(name)) {
      open.push_back(name);
      if (name == "style") at = html.find("</style>", at) - 1;  // CSS is not markup
    }
    at = end;
  }
  return open.empty() ? "" : "<" + open.back() + "> left open";
}

void expect_complete_page(const std::string& html) {
  EXPECT_EQ(unbalanced_tag(html), "");
  EXPECT_EQ(count(html, "<svg"), count(html, "</svg>"));
  EXPECT_EQ(count(html, "<figure"), 6u);
  for (const char* id : kFigures) {
    const std::string fig = figure_of(html, id);
    ASSERT_FALSE(fig.empty()) << id;
    EXPECT_THAT(fig, HasSubstr("<svg")) << id;
    EXPECT_THAT(fig, HasSubstr("<figcaption>")) << id;
  }
  // Self-contained: no scripts and nothing fetched from anywhere.
  EXPECT_THAT(html, Not(HasSubstr("http://")));
  EXPECT_THAT(html, Not(HasSubstr("https://")));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
}

constexpr const char* kTwoRankRun = R"(
{"step":1,"loss":4.2,"lr":0.001,"grad_norm":1.9,"tokens_per_s":1000,"gflops":1.5,"tokens":64,"elapsed_s":0.5,"world_size":2,"zero_stage":2,"memory":{"params":1048576,"grads":524288,"peak_total":3145728},"ranks":[{"rank":0,"peak_bytes":3145728,"comm_busy_s":0.1,"comm_exposed_s":0.05},{"rank":1,"peak_bytes":2097152,"comm_busy_s":0.12,"comm_exposed_s":0.04}],"comm_bytes_sent":{"all_gather":1048576,"reduce_scatter":1048576},"comm_calls":{"all_gather":4,"reduce_scatter":4}}
{"step":10,"loss":3.9,"val_loss":3.95,"lr":0.0009,"grad_norm":1.2,"tokens_per_s":2000,"gflops":3.0,"tokens":640,"elapsed_s":1.0,"world_size":2,"zero_stage":2,"memory":{"params":1048576,"grads":524288,"optimizer":2097152,"peak_total":4194304},"ranks":[{"rank":0,"peak_bytes":4194304,"comm_busy_s":0.3,"comm_exposed_s":0.1},{"rank":1,"peak_bytes":4194304,"comm_busy_s":0.35,"comm_exposed_s":0.12}],"comm_bytes_sent":{"all_gather":10485760,"reduce_scatter":10485760},"comm_calls":{"all_gather":40,"reduce_scatter":40}}
{"step":20,"loss":3.5,"val_loss":3.6,"lr":0.0008,"grad_norm":0.9,"tokens_per_s":2100,"gflops":3.1,"tokens":1280,"elapsed_s":1.5,"world_size":2,"zero_stage":2,"memory":{"params":1048576,"grads":524288,"optimizer":2097152,"peak_total":4194304},"ranks":[{"rank":0,"peak_bytes":4194304,"comm_busy_s":0.6,"comm_exposed_s":0.2},{"rank":1,"peak_bytes":4194304,"comm_busy_s":0.7,"comm_exposed_s":0.25}],"comm_bytes_sent":{"all_gather":20971520,"reduce_scatter":20971520},"comm_calls":{"all_gather":80,"reduce_scatter":80}}
)";

TEST(ReportHtml, DrawsEveryFigureWithTheHeaderAndConfig) {
  const Report report = render_report({"run-a", parse_lines(kTwoRankRun), "model:\n  n_layer: 2\n"});
  const std::string& html = report.html;
  expect_complete_page(html);
  EXPECT_EQ(report.steps, 20);
  EXPECT_EQ(report.plots, 6);
  EXPECT_EQ(series_points(html, "train loss"), 3u);
  EXPECT_EQ(series_points(html, "val loss"), 2u);
  EXPECT_THAT(figure_of(html, "loss"), HasSubstr("val loss"));  // legend
  EXPECT_THAT(html, HasSubstr("<h1>run-a</h1>"));
  EXPECT_THAT(html, HasSubstr("<dd>3.5000</dd>"));  // final loss
  EXPECT_THAT(html, HasSubstr("<dd>3.6000</dd>"));  // final val loss
  EXPECT_THAT(html, HasSubstr("<dt>ZeRO stage</dt><dd>2</dd>"));
  EXPECT_THAT(html, HasSubstr("<pre>model:\n  n_layer: 2\n</pre>"));
  const std::string memory = figure_of(html, "memory");
  EXPECT_THAT(memory, HasSubstr("rank 1"));
  EXPECT_THAT(memory, HasSubstr("optimizer"));
  // Without a profile the comm figure says what its numbers are derived from.
  const std::string comm = figure_of(html, "comm");
  EXPECT_THAT(comm, HasSubstr("No profile record"));
  EXPECT_THAT(comm, HasSubstr("comm exposed"));
  EXPECT_THAT(comm, HasSubstr("reduce_scatter"));
  EXPECT_THAT(comm, HasSubstr("16.7%"));  // rank 1: 0.25 s exposed of 1.5 s
}

TEST(ReportHtml, ProfileRecordBreaksStepTimeDownByCategory) {
  const std::string profile = R"(
{"step":20,"loss":3.5,"elapsed_s":2.0,"ranks":[{"rank":0,"peak_bytes":1000,"comm_busy_s":0.5,"comm_exposed_s":0.1}],"profile":{"start_step":11,"end_step":20,"peak_gflops":100.0,"peak_source":"measured sgemm","ranks":[{"rank":0,"step_s":0.05,"categories":{"data":0.001,"forward":0.015,"backward":0.025,"optimizer":0.004,"comm_exposed":0.003,"checkpoint":0.0,"other":0.002},"comm_total_s":0.012,"comm_exposed_s":0.003,"gflops":42.5,"mfu":0.425},{"rank":1,"step_s":0.05,"categories":{"forward":0.016,"backward":0.026,"recompute":0.004},"comm_total_s":0.01,"gflops":41.0,"mfu":0.41},{"rank":2,"step_s":0.05,"categories":{"forward":0.02},"comm_total_s":0.01,"comm_exposed_s":0.0101}]}}
{"step":21,"loss":3.4,"elapsed_s":2.1}
)";
  const std::string html = render(profile);
  expect_complete_page(html);
  const std::string comm = figure_of(html, "comm");
  for (const char* category : {"data", "forward", "backward", "recompute", "optimizer", "comm_exposed", "other"})
    EXPECT_THAT(comm, HasSubstr(fmt::format(">{}</text>", category))) << category;  // legend entries
  EXPECT_THAT(comm, Not(HasSubstr(">checkpoint</text>")));  // zero on every rank
  EXPECT_THAT(comm, HasSubstr("<td>rank 2</td><td>50.00</td><td>10.00</td><td>10.10</td><td>0%</td><td>–</td><td>–</td>"));
  EXPECT_THAT(comm, HasSubstr("<th>MFU</th>"));
  EXPECT_THAT(comm, HasSubstr("42.5%"));
  EXPECT_THAT(comm, HasSubstr("41.0%"));
  EXPECT_THAT(comm, HasSubstr("75%"));  // rank 0 hides 9 of 12 ms of communication
  EXPECT_THAT(comm, HasSubstr("11–20"));
  EXPECT_THAT(comm, HasSubstr("measured sgemm"));
  EXPECT_THAT(comm, Not(HasSubstr("No profile record")));
}

TEST(ReportHtml, SkipsMissingAndMistypedFields) {
  const std::string html = render(R"(
{"step":1,"loss":4.0}
{"note":"no step, no loss: ignored","lr":5.0}
{"step":2,"loss":"nan","lr":0.001,"grad_norm":null,"memory":"none","ranks":{"rank":0}}
{"step":3,"loss":3.8,"val_loss":3.9,"tokens_per_s":100,"memory":{"params":2048,"peak_total":"big"}}
{"loss":3.7}
)");
  expect_complete_page(html);
  EXPECT_EQ(series_points(html, "train loss"), 3u);  // steps 1 and 3, and 4 for the step-less record
  EXPECT_EQ(series_points(html, "val loss"), 1u);
  EXPECT_EQ(series_points(html, "lr"), 1u);
  EXPECT_THAT(figure_of(html, "grad-norm"), HasSubstr("no data"));
  EXPECT_THAT(figure_of(html, "comm"), HasSubstr("no data"));
  EXPECT_THAT(figure_of(html, "memory"), HasSubstr("params"));
}

TEST(ReportHtml, SingleRecordDrawsDots) {
  const Report report = render_report({"one", parse_lines(R"({"step":7,"loss":4.1,"lr":0.001})"), ""});
  expect_complete_page(report.html);
  EXPECT_EQ(report.steps, 7);
  EXPECT_EQ(series_points(report.html, "train loss"), 1u);
  EXPECT_THAT(figure_of(report.html, "loss"), HasSubstr("<circle"));
  EXPECT_THAT(report.html, Not(HasSubstr("id=\"config\"")));
}

// A hand-edited step past int64's range is drawn, not converted out of range (fuzz_report).
TEST(ReportHtml, AStepPastInt64IsClamped) {
  const Report report =
      render_report({"huge", parse_lines(R"({"step":1,"loss":4.0})" "\n" R"({"step":3.3e123,"loss":4.1})"), ""});
  expect_complete_page(report.html);
  EXPECT_EQ(report.steps, static_cast<int64_t>(9e18));
}

// A single record that far out made the axis zero-wide (a pad of 1 is lost in rounding at
// 9e18), so every position was NaN and the line decimation never advanced (fuzz_report).
TEST(ReportHtml, ASingleRecordPastInt64DrawsOneDot) {
  const Report report = render_report({"huge", parse_lines(R"({"step":3.3e123,"loss":4.1})"), ""});
  expect_complete_page(report.html);
  EXPECT_EQ(series_points(report.html, "train loss"), 1u);
  EXPECT_THAT(report.html, Not(HasSubstr("cx=\"nan")));
}

// A run resumed from an earlier checkpoint logs some steps again: the later records win and
// the resume is marked.
TEST(ReportHtml, ResumedRunKeepsEachStepOnceAndMarksTheResume) {
  const Report report = render_report({"resumed", parse_lines(R"(
{"step":2,"loss":4.0,"elapsed_s":1.0,"world_size":4}
{"step":4,"loss":3.9,"elapsed_s":2.0,"world_size":4}
{"step":6,"loss":3.8,"elapsed_s":3.2,"world_size":4}
{"step":6,"loss":3.7,"elapsed_s":0.5,"world_size":2}
{"step":8,"loss":3.6,"elapsed_s":1.5,"world_size":2}
)"),
                                       ""});
  expect_complete_page(report.html);
  EXPECT_EQ(report.steps, 8);
  EXPECT_EQ(series_points(report.html, "train loss"), 4u);
  EXPECT_THAT(figure_of(report.html, "loss"), HasSubstr("class=\"marker\""));
  EXPECT_THAT(report.html, HasSubstr("<dt>world size</dt><dd>4 → 2</dd>"));
  EXPECT_THAT(report.html, HasSubstr("<dt>wall time</dt><dd>4.7 s</dd>"));  // 3.2 s, then 1.5 s
}

TEST(ReportHtml, EscapesEveryText) {
  const std::string html = render_report({"<b>&run", parse_lines(R"({"step":1,"loss":4.0,"memory":{"<i>":1}})"),
                                          "name: \"</pre><script>x</script>\""})
                               .html;
  EXPECT_THAT(html, HasSubstr("&lt;b&gt;&amp;run"));
  EXPECT_THAT(html, HasSubstr("&lt;/pre&gt;&lt;script&gt;"));
  EXPECT_THAT(html, HasSubstr("&lt;i&gt;"));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_EQ(unbalanced_tag(html), "");
  EXPECT_EQ(html_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
}

TEST(ReportHtml, LongRunsStayCompact) {
  std::string jsonl;
  for (int step = 1; step <= 100000; ++step)
    jsonl += fmt::format(R"({{"step":{},"loss":{}}})", step, 4.0 - step * 1e-5 + (step % 7) * 0.01) + "\n";
  const std::string html = render(jsonl);
  EXPECT_LT(series_points(html, "train loss"), 4 * 600u);  // at most four points per pixel column
  EXPECT_LT(html.size(), 200u * 1024);
}

TEST(ReportHtml, NoUsableRecordFails) {
  EXPECT_THAT(error_of([] { render(R"({"note":1})"); }), HasSubstr("no usable record"));
}

TEST(ReportHtml, TicksAreRoundAndCoverTheRange) {
  using ::testing::DoubleNear;
  using ::testing::ElementsAre;
  EXPECT_THAT(nice_ticks(0, 1), ElementsAre(0, DoubleNear(0.2, 1e-12), DoubleNear(0.4, 1e-12),
                                            DoubleNear(0.6, 1e-12), DoubleNear(0.8, 1e-12), DoubleNear(1, 1e-12)));
  EXPECT_THAT(nice_ticks(3.62, 4.19), ElementsAre(DoubleNear(3.7, 1e-12), DoubleNear(3.8, 1e-12),
                                                  DoubleNear(3.9, 1e-12), DoubleNear(4.0, 1e-12), DoubleNear(4.1, 1e-12)));
  EXPECT_THAT(nice_ticks(1, 20, 5, true), ElementsAre(5, 10, 15, 20));
  EXPECT_THAT(nice_ticks(1, 3, 5, true), ElementsAre(1, 2, 3));  // never fractional steps
  EXPECT_THAT(nice_ticks(2, 2), ElementsAre(2));
}

TEST(ReportHtml, EmptyChartsSayNoData) {
  LineChart chart;
  chart.x_label = "step";
  chart.y_label = "loss";
  chart.series = {{"loss", {}, false}};
  EXPECT_THAT(svg_line_chart(chart), HasSubstr("no data"));
  EXPECT_THAT(svg_bar_chart(BarChart{}), HasSubstr("no data"));
}

// ---- the command ------------------------------------------------------------------------

TEST(CliReport, RendersATrainedRun) {
  TempDir tmp;
  auto r = run_zt("train configs/test-tiny-gpt2.yaml --set run.out_dir=" + tmp.str() +
                  " --set train.steps=20 --set train.log_every=2 --set train.eval_every=10"
                  " --set data.val_fraction=0.1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto run = tmp.path() / "test-tiny-gpt2";
  r = run_zt("report " + run.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto page = run / "report.html";
  EXPECT_THAT(r.output, HasSubstr("report: " + page.string() + " (20 steps, 6 plots)"));
  const std::string html = read_file(page);
  expect_complete_page(html);
  EXPECT_EQ(series_points(html, "train loss"), 11u);  // step 1, then every second step
  EXPECT_EQ(series_points(html, "val loss"), 2u);     // steps 10 and 20
  EXPECT_GE(series_points(html, "tokens/s"), 11u);
  EXPECT_THAT(html, HasSubstr("<h1>test-tiny-gpt2</h1>"));
  EXPECT_THAT(html, HasSubstr("n_layer: 2"));  // config.yaml
  EXPECT_FALSE(std::filesystem::exists(page.string() + ".tmp"));

  const auto elsewhere = tmp.path() / "elsewhere.html";
  r = run_zt("report " + run.string() + "/ -o " + elsewhere.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_file(elsewhere), html);  // a trailing slash names the same run
}

TEST(CliReport, MissingRunOrMetricsFailsNamingThePath) {
  TempDir tmp;
  auto r = run_zt("report " + tmp.str() + "/nope");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("error: " + tmp.str() + "/nope"));

  r = run_zt("report " + tmp.str());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr(tmp.str() + "/metrics.jsonl"));

  std::ofstream(tmp.path() / "metrics.jsonl") << "\n\n";
  r = run_zt("report " + tmp.str());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr(tmp.str() + "/metrics.jsonl: empty"));
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "report.html"));
}

TEST(CliReport, MalformedLineFailsNamingFileAndLineAndWritesNothing) {
  TempDir tmp;
  const auto out = tmp.path() / "report.html";
  std::ofstream(out) << "earlier page";
  std::ofstream(tmp.path() / "metrics.jsonl") << R"({"step":1,"loss":4.0})" << "\n"
                                              << R"({"step":2,"loss":3.9})" << "\n"
                                              << R"({"step":3,"lo)" << "\n";
  auto r = run_zt("report " + tmp.str());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr(tmp.str() + "/metrics.jsonl:3:"));
  EXPECT_EQ(count(r.output, "\n"), 1u) << r.output;  // one line
  EXPECT_EQ(read_file(out), "earlier page");
  EXPECT_FALSE(std::filesystem::exists(out.string() + ".tmp"));

  std::ofstream(tmp.path() / "metrics.jsonl") << R"({"step":1,"loss":4.0})" << "\n[1, 2]\n";
  r = run_zt("report " + tmp.str());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("metrics.jsonl:2: expected a JSON object"));
}

// nlohmann reports a number past double's range as out_of_range, not as a parse error.
TEST(CliReport, NumberOutOfRangeFailsNamingFileAndLine) {
  TempDir tmp;
  std::ofstream(tmp.path() / "metrics.jsonl") << R"({"step":1,"loss":4.0})" << "\n" << R"({"step":2,"loss":52421e308})" << "\n";
  EXPECT_THAT(error_of([&] { cmd_report({tmp.str()}); }), HasSubstr(tmp.str() + "/metrics.jsonl:2: malformed JSON"));
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "report.html"));
}

TEST(CliReport, UnwritableOutputFailsAndLeavesNothing) {
  TempDir tmp;
  std::ofstream(tmp.path() / "metrics.jsonl") << R"({"step":1,"loss":4.0})" << "\n";
  const std::string out = tmp.str() + "/missing-dir/report.html";
  auto r = run_zt("report " + tmp.str() + " -o " + out);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr(out));
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "missing-dir"));
}

}  // namespace
}  // namespace zt
