// The record loop's localizer (see live_localizer.h).
#include "profiler/live_localizer.h"

#include <algorithm>
#include <map>

#include "flamegraph/flamegraph.h"
#include "localize/baseline_candidates.h"
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
// Processes localized per anomaly: the most anomalous one, and others with
// at least this part of its anomalous weight (a disk flood and the service
// it stalls change together; both are worth a hint).
static constexpr size_t kMaxProcesses = 3;
static constexpr double kOtherProcessShare = 0.1;
// Baseline rounds: functions per round, and intervals between rounds (one
// interval in ten probed: at the default 5 s, 5 s of probes a minute).
static constexpr size_t kBaselineFunctions = 8;
static constexpr size_t kBaselineEvery = 10;
static constexpr size_t kBaselineFirstAfter = 3;
// Intervals anomaly probes stay at least before another anomaly takes them over.
static constexpr uint64_t kMinProbeIntervals = 3;

LiveLocalizer::LiveLocalizer(Options options)
    : options_(std::move(options)),
      history_(kBaselineIntervals + 1),
      baseline_(LatencyBaseline::Options{.sample_hz = options_.sample_hz,
                                         .functions = kBaselineFunctions,
                                         .first_after = kBaselineFirstAfter,
                                         .every = kBaselineEvery,
                                         .report = options_.report}) {
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
  if (options_.probes && options_.baseline_probes) baseline_.end_interval(interval.index, anomalies.empty());
  if (!sessions_.empty()) {
    normal_since_probe_ = stack_anomaly ? 0 : normal_since_probe_ + 1;
    bool expired = std::any_of(sessions_.begin(), sessions_.end(),
                               [](const ProbeSession& s) { return s.probes && s.probes->expired(); });
    // The probes follow the anomaly: when a new one has a top suspect the
    // probes do not cover (the first flag was a blip, or the trouble moved),
    // what they measured is reported and the new one is localized.
    std::optional<uint32_t> moved = stack_anomaly ? anomaly_moved(interval, seconds) : std::nullopt;
    if (expired || normal_since_probe_ >= kAnomalyOverAfter) {
      finish_probes();
    } else if (moved) {
      // Only that process's probes: the others' anomalies go on.
      finish_probes(moved);
      localize(interval, seconds, moved);
    }
  } else if (stack_anomaly) {
    localize(interval, seconds);
  }

  history_.add(interval.index, seconds, !anomalies.empty(), interval.stacks);

  // A baseline round for the next interval, while nothing is going on.
  if (options_.probes && options_.baseline_probes && sessions_.empty() && anomalies.empty()) {
    if (baseline_.due(interval.index, history_.normal_intervals())) {
      Baseline normal = history_.baseline();
      baseline_.start(interval.index, normal.stacks, normal.seconds);
    }
  }
}

std::vector<LiveLocalizer::Changed> LiveLocalizer::changed_processes(const Interval& interval) const {
  std::map<uint32_t, Changed> by_tgid;
  for (const StackSample& s : interval.stacks) {
    if (!s.label || (s.kind != StackKind::kOnCpu && s.kind != StackKind::kOffCpu)) continue;
    Changed& c = by_tgid[s.tgid];
    c.tgid = s.tgid;
    c.name = s.process_name;
    c.weight += s.kind == StackKind::kOnCpu ? static_cast<double>(s.count) / options_.sample_hz
                                            : static_cast<double>(s.off_ns) / 1e9;
  }
  std::vector<Changed> out;
  for (auto& [t, c] : by_tgid) out.push_back(c);
  std::stable_sort(out.begin(), out.end(), [](const Changed& a, const Changed& b) { return a.weight > b.weight; });
  return out;
}

LiveLocalizer::Baseline LiveLocalizer::baseline_stacks(uint32_t tgid, uint64_t until) const {
  // Only the process's stacks: the readers (ProcessFilter{tgid}) use no
  // others, and rebuilding every process's would cost what the compact
  // history saves.
  return history_.baseline(until, tgid);
}

std::optional<uint32_t> LiveLocalizer::anomaly_moved(const Interval& interval, double seconds) const {
  std::vector<Changed> changed = changed_processes(interval);
  if (changed.empty()) return std::nullopt;
  Baseline base = baseline_stacks(changed.front().tgid);
  if (base.intervals.empty()) return std::nullopt;
  localize::RankOptions ro;
  ro.sample_hz = options_.sample_hz;
  ro.top = 1;
  auto top = localize::rank_suspects(base.stacks, base.seconds, interval.stacks, seconds,
                                     localize::ProcessFilter{changed.front().tgid, ""}, ro);
  if (top.empty() || !top.front().probeable) return std::nullopt;
  for (const ProbeSession& s : sessions_) {
    if (s.tgid != changed.front().tgid) continue;
    // Probes get a couple of intervals before they are given up: a slow
    // call must have had the time to complete.
    if (interval.index < s.interval + kMinProbeIntervals) return std::nullopt;
    // The same suspects (probed or not): the same anomaly, still going.
    for (const localize::Suspect& suspect : result_.processes[s.process].suspects)
      if (suspect.function == top.front().function) return std::nullopt;
  }
  return changed.front().tgid;
}

void LiveLocalizer::localize(const Interval& interval, double seconds, std::optional<uint32_t> only) {
  // The processes that changed: by labelled (anomalous) weight; those
  // still probed for an earlier anomaly are left to their probes.
  std::vector<Changed> ranked;
  for (const Changed& c : changed_processes(interval)) {
    if (only && c.tgid != *only) continue;
    bool probed = std::any_of(sessions_.begin(), sessions_.end(), [&](const ProbeSession& s) { return s.tgid == c.tgid; });
    if (!probed) ranked.push_back(c);
  }
  if (ranked.empty()) return;  // a change no stack carries (a load-only flag)
  if (history_.normal_intervals() == 0) {
    say("localize: no normal interval yet to compare interval " + std::to_string(interval.index) + " with");
    return;
  }
  baseline_.stop();  // the anomaly's probes take over
  for (size_t i = 0; i < ranked.size() && i < kMaxProcesses; ++i) {
    if (i > 0 && ranked[i].weight < kOtherProcessShare * ranked.front().weight) break;
    localize_process(ranked[i].tgid, ranked[i].name, interval, seconds);
  }
  write_files();
}

void LiveLocalizer::localize_process(uint32_t tgid, const std::string& name, const Interval& interval,
                                     double seconds) {
  Baseline base = baseline_stacks(tgid);
  const std::vector<StackSample>& baseline = base.stacks;
  const double baseline_seconds = base.seconds;
  const std::vector<uint64_t>& baseline_intervals = base.intervals;
  localize::ProcessLocalization loc;
  loc.process = name;
  loc.baseline_seconds = baseline_seconds;
  loc.baseline_intervals = baseline_intervals;
  loc.anomaly_intervals = {interval.index};
  loc.anomaly_seconds = seconds;
  localize::RankOptions ro;
  ro.sample_hz = options_.sample_hz;
  loc.suspects = localize::rank_suspects(baseline, baseline_seconds, interval.stacks, seconds,
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
    if (s.tgid == tgid && (s.kind == StackKind::kOnCpu || s.kind == StackKind::kOffCpu)) cur_p.push_back(s);
  flamegraph::SvgOptions o;
  o.title = "Anomaly in interval " + std::to_string(interval.index) + ": " + loc.process;
  o.subtitle = "red grew, blue shrank, against " + std::to_string(loc.baseline_intervals.size()) +
               " normal intervals before (wall-clock weights: on-CPU samples and off-CPU us)";
  std::string svg = options_.output_dir + "/anomaly-" + std::to_string(interval.index) +
                    (result_.processes.empty() || result_.processes.back().anomaly_intervals != loc.anomaly_intervals
                         ? ""
                         : "-" + std::to_string(tgid)) +
                    ".svg";
  try {
    write_file_atomically(svg, flamegraph::render_diff_svg(base_p, cur_p, o));
  } catch (const Error& e) {
    say(std::string("localize: ") + e.what());
  }

  result_.processes.push_back(std::move(loc));
  if (!options_.probes) return;
  const localize::ProcessLocalization& placed = result_.processes.back();
  ProbeSession session;
  session.tgid = tgid;
  session.process = result_.processes.size() - 1;
  session.interval = interval.index;
  session.plan = plan_probes(static_cast<int>(tgid), placed.suspects);
  for (const std::string& why : session.plan.skipped) say("localize: not probed: " + why);
  if (session.plan.targets.empty()) return;
  // What each function's latency was before: the baseline rounds'
  // measurement, else whether the normal stacks before the lead-up show it
  // at all (the lead-up may hold the unflagged start of the anomaly).
  uint64_t lead_up = interval.index >= LatencyBaseline::kLeadUp ? interval.index - LatencyBaseline::kLeadUp + 1 : 0;
  Baseline before_lead_up = baseline_stacks(tgid, lead_up);
  for (size_t i = 0; i < session.plan.targets.size(); ++i) {
    const ProbeTarget& t = session.plan.targets[i];
    if (auto b = baseline_.find(tgid, t.binary_path, t.file_offset, interval.index)) {
      session.before.push_back(*b);
    } else {
      localize::BaselineLatency b2;
      b2.seconds = before_lead_up.seconds;
      b2.sampled = before_lead_up.intervals.empty() ||
                   localize::sampled_in(before_lead_up.stacks, tgid,
                                        placed.suspects[session.plan.suspect_index[i]].function);
      session.before.push_back(b2);
    }
  }
  try {
    session.probes = std::make_unique<LatencyProbes>(
        session.plan.targets, LatencyProbeOptions{.pid = static_cast<int>(tgid), .seconds = options_.probe_seconds});
  } catch (const Error& e) {
    say(std::string("localize: cannot probe: ") + e.what());
    return;
  }
  normal_since_probe_ = 0;
  std::string names_list;
  for (const auto& t : session.plan.targets) names_list += (names_list.empty() ? "" : ", ") + t.function;
  say("probing " + names_list + " in " + placed.process + " (" + std::to_string(tgid) + ") for up to " +
      std::to_string(static_cast<int>(options_.probe_seconds)) + " s");
  sessions_.push_back(std::move(session));
}

void LiveLocalizer::finish_probes(std::optional<uint32_t> only) {
  std::vector<ProbeSession> sessions, kept;
  for (ProbeSession& s : sessions_) (!only || s.tgid == *only ? sessions : kept).push_back(std::move(s));
  sessions_ = std::move(kept);
  if (sessions.empty()) return;
  // Read while attached, detach in the background (seconds for a few
  // probes): the record loop keeps its interval.
  std::vector<std::vector<localize::FunctionLatency>> reports;
  for (ProbeSession& s : sessions) {
    reports.push_back(s.probes->report());
    detacher_.detach(std::move(s.probes));
  }
  for (size_t n = 0; n < sessions.size(); ++n) {
    const ProbeSession& s = sessions[n];
    localize::ProcessLocalization& loc = result_.processes[s.process];
    for (size_t i = 0; i < reports[n].size() && i < s.plan.suspect_index.size(); ++i) {
      localize::FunctionLatency f = reports[n][i];
      if (i < s.before.size()) f.baseline = s.before[i];
      size_t k = s.plan.suspect_index[i];
      if (k < loc.suspects.size()) {
        loc.hints[k] = localize::make_hint(loc.suspects[k], &f);
        say("hint: " + loc.hints[k].sentence);
      }
      probe_reports_.push_back(std::move(f));
    }
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
  baseline_.finish();
  detacher_.wait();
}

}  // namespace stackwatch::profiler
