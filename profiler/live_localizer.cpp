// The record loop's localizer (see live_localizer.h).
#include "profiler/live_localizer.h"

#include <map>

#include "flamegraph/flamegraph.h"
#include "localize/root_cause_hint.h"
#include "localize/suspect_ranking.h"
#include "recording/atomic_file.h"
#include "recording/error.h"

namespace stackwatch::profiler {

// Normal intervals kept as the baseline of the next anomaly: enough for a
// stable rate (20 x 5 s), bounded so a long recording's memory stays flat.
static constexpr size_t kBaselineIntervals = 20;
// Intervals without anomaly after which the anomaly counts as over.
static constexpr size_t kAnomalyOverAfter = 2;

LiveLocalizer::LiveLocalizer(Options options) : options_(std::move(options)) {
  result_.directory = options_.output_dir;
}

LiveLocalizer::~LiveLocalizer() {
  try {
    finish();
  } catch (...) {
    // Destruction detaches the probes whatever happens to the files.
  }
}

void LiveLocalizer::say(const std::string& line) {
  if (options_.report) std::fprintf(options_.report, "  %s\n", line.c_str());
}

void LiveLocalizer::on_interval(const Interval& interval, double seconds,
                                const std::vector<localize::Anomaly>& anomalies) {
  bool stack_anomaly = false;
  for (const auto& a : anomalies) stack_anomaly |= a.kind.rfind("load_", 0) != 0;
  if (probes_) {
    normal_since_probe_ = stack_anomaly ? 0 : normal_since_probe_ + 1;
    if (probes_->expired() || normal_since_probe_ >= kAnomalyOverAfter) finish_probes();
  } else if (stack_anomaly) {
    localize(interval, seconds);
  }
  history_.push_back({interval.index, seconds, !anomalies.empty(), interval.stacks});
  while (history_.size() > kBaselineIntervals + 1) history_.pop_front();
}

void LiveLocalizer::localize(const Interval& interval, double seconds) {
  // The process that changed: the most labelled (anomalous) weight.
  std::map<uint32_t, double> labelled;
  std::map<uint32_t, std::string> names;
  for (const StackSample& s : interval.stacks) {
    if (!s.label) continue;
    double w = s.kind == StackKind::kOnCpu ? s.count / options_.sample_hz : s.off_ns / 1e9;
    labelled[s.tgid] += w;
    names[s.tgid] = s.process_name;
  }
  if (labelled.empty()) return;  // a change no stack carries (a load-only flag)
  uint32_t tgid = labelled.begin()->first;
  for (auto& [t, w] : labelled)
    if (w > labelled[tgid]) tgid = t;

  std::vector<StackSample> baseline;
  localize::ProcessLocalization loc;
  loc.process = names[tgid];
  for (const Past& p : history_) {
    if (p.anomalous) continue;
    baseline.insert(baseline.end(), p.stacks.begin(), p.stacks.end());
    loc.baseline_seconds += p.seconds;
    loc.baseline_intervals.push_back(p.index);
  }
  if (loc.baseline_intervals.empty()) {
    say("localize: no normal interval yet to compare interval " + std::to_string(interval.index) + " with");
    return;
  }
  loc.anomaly_intervals = {interval.index};
  loc.anomaly_seconds = seconds;
  localize::RankOptions ro;
  ro.sample_hz = options_.sample_hz;
  loc.suspects = localize::rank_suspects(baseline, loc.baseline_seconds, interval.stacks, seconds,
                                         localize::ProcessFilter{tgid, ""}, ro);
  if (loc.suspects.empty()) {
    say("localize: " + loc.process + " (" + std::to_string(tgid) + "): no function explains the change");
    return;
  }
  for (const auto& s : loc.suspects) loc.hints.push_back(localize::make_hint(s, nullptr));
  say("suspect in " + loc.process + " (" + std::to_string(tgid) + "): " + loc.hints.front().sentence);

  // What grew, drawn: anomaly against baseline, this process only.
  std::vector<StackSample> base_p, cur_p;
  for (const auto& s : baseline)
    if (s.tgid == tgid) base_p.push_back(s);
  for (const auto& s : interval.stacks)
    if (s.tgid == tgid) cur_p.push_back(s);
  flamegraph::SvgOptions o;
  o.title = "Anomaly in interval " + std::to_string(interval.index) + ": " + loc.process;
  o.subtitle = "red grew, blue shrank, against " + std::to_string(loc.baseline_intervals.size()) +
               " normal intervals before (wall-clock weights: on-CPU samples and off-CPU us)";
  try {
    write_file_atomically(options_.output_dir + "/anomaly-" + std::to_string(interval.index) + ".svg",
                          flamegraph::render_diff_svg(base_p, cur_p, o));
  } catch (const Error& e) {
    say(std::string("localize: ") + e.what());
  }

  result_.processes.push_back(std::move(loc));
  if (options_.probes) {
    plan_ = plan_probes(static_cast<int>(tgid), result_.processes.back().suspects);
    for (const std::string& why : plan_.skipped) say("localize: not probed: " + why);
    if (!plan_.targets.empty()) {
      try {
        probes_ = std::make_unique<LatencyProbes>(
            plan_.targets, LatencyProbeOptions{.pid = static_cast<int>(tgid), .seconds = options_.probe_seconds});
        normal_since_probe_ = 0;
        std::string names_list;
        for (const auto& t : plan_.targets) names_list += (names_list.empty() ? "" : ", ") + t.function;
        say("probing " + names_list + " for up to " + std::to_string(static_cast<int>(options_.probe_seconds)) + " s");
      } catch (const Error& e) {
        say(std::string("localize: cannot probe: ") + e.what());
      }
    }
  }
  write_files();
}

void LiveLocalizer::finish_probes() {
  if (!probes_) return;
  std::vector<localize::FunctionLatency> report = probes_->report();
  probes_.reset();  // detach now
  localize::ProcessLocalization& loc = result_.processes.back();
  for (size_t i = 0; i < report.size() && i < plan_.suspect_index.size(); ++i) {
    size_t k = plan_.suspect_index[i];
    if (k >= loc.suspects.size()) continue;
    loc.hints[k] = localize::make_hint(loc.suspects[k], &report[i]);
    say("hint: " + loc.hints[k].sentence);
    probe_reports_.push_back(report[i]);
  }
  write_files();
}

void LiveLocalizer::write_files() {
  if (result_.processes.empty()) return;
  try {
    localize::write_hints(options_.output_dir, result_);
    nlohmann::json probes = {{"functions", nlohmann::json::array()}};
    for (const auto& f : probe_reports_) probes["functions"].push_back(f.to_json());
    write_file_atomically(options_.output_dir + "/probes.json", probes.dump(1) + "\n");
  } catch (const Error& e) {
    say(std::string("localize: ") + e.what());
  }
}

void LiveLocalizer::finish() {
  finish_probes();
}

}  // namespace stackwatch::profiler
