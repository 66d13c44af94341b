// `stackwatch localize DIR` (see localize_pipeline.h).
#include "localize/localize_pipeline.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>

#include "localize/interval_log.h"
#include "localize/interval_monitor.h"
#include "localize/json_lines.h"
#include "recording/atomic_file.h"
#include "recording/error.h"
#include "recording/stacks_json.h"

namespace stackwatch::localize {

namespace fs = std::filesystem;

namespace {

constexpr double kDefaultSampleHz = 49;  // record's default rate (DESIGN.md)

// What stacks.json knows about a stack identity that intervals.jsonl does
// not: full frames (kernel flags, module paths) and the off-CPU state mix.
struct StackDetail {
  std::vector<Frame> frames;
  StateArray off_ns{};
};

nlohmann::json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read " + path.string());
  nlohmann::json doc = nlohmann::json::parse(in, nullptr, false);
  if (doc.is_discarded()) throw Error(path.string() + ": not valid JSON");
  return doc;
}

// The process name of a detector series ("stack on:comm;...", "process off:comm").
std::string process_of_series(const std::string& series) {
  for (const char* prefix : {"stack on:", "stack off:", "process on:", "process off:"}) {
    std::string p = prefix;
    if (series.rfind(p, 0) != 0) continue;
    std::string rest = series.substr(p.size());
    return rest.substr(0, rest.find(';'));
  }
  return {};
}

struct Flagged {
  std::set<uint64_t> intervals;
  std::map<std::string, double> processes;  // name -> weight of evidence
};

void note_anomaly(Flagged& f, uint64_t interval, const nlohmann::json& top) {
  f.intervals.insert(interval);
  double weight = 1.0;
  for (const auto& c : top) {
    std::string p = process_of_series(c.value("series", ""));
    if (!p.empty()) f.processes[p] += weight;
    weight *= 0.5;  // contributors are listed largest first
  }
}

Flagged flagged_intervals(const fs::path& dir, const std::vector<IntervalRecord>& records) {
  Flagged f;
  fs::path file = dir / "anomalies.jsonl";
  if (fs::exists(file)) {
    read_json_lines(file.string(), [&](size_t, const nlohmann::json& a) {
      if (!a.contains("interval")) return;
      note_anomaly(f, a["interval"].get<uint64_t>(), a.value("top", nlohmann::json::array()));
    });
    return f;
  }
  IntervalMonitor monitor;
  for (const IntervalRecord& r : records)
    for (const Anomaly& a : monitor.observe(r)) note_anomaly(f, a.interval_index, anomaly_to_json(a)["top"]);
  return f;
}

bool in_ranges(uint64_t index, const std::vector<IntervalRange>& ranges) {
  return std::any_of(ranges.begin(), ranges.end(), [index](const IntervalRange& r) { return index >= r.first && index <= r.last; });
}

// The samples of one interval record, with details from stacks.json where known.
void append_samples(const IntervalRecord& r, const std::unordered_map<std::string, StackDetail>& details,
                    std::vector<StackSample>& out) {
  for (const StackTotal& t : r.stacks) {
    StackSample s;
    s.process_name = t.process;
    s.kind = t.kind;
    auto d = details.find(t.id);
    if (d != details.end()) {
      s.frames = d->second.frames;
    } else {
      for (size_t i = t.frames.size(); i-- > 0;) {
        Frame f;
        f.function = t.frames[i];
        f.module = i < t.modules.size() ? t.modules[i] : "";
        f.kernel = f.module == "[kernel]";
        s.frames.push_back(std::move(f));
      }
    }
    if (t.kind == StackKind::kOnCpu) {
      s.count = t.weight;
      out.push_back(std::move(s));
      continue;
    }
    // Off-CPU: weight is blocked microseconds; split it by the state mix
    // stacks.json recorded for this stack (interruptible when unknown).
    double total = d != details.end() ? sum(d->second.off_ns) : 0;
    if (total <= 0) {
      s.off_state = OffCpuState::kInterruptible;
      s.off_ns = t.weight * 1000;
      s.count = t.samples;
      out.push_back(std::move(s));
      continue;
    }
    for (size_t st = 0; st < kOffStates; ++st) {
      double part = d->second.off_ns[st] / total;
      if (part <= 0) continue;
      StackSample p = s;
      p.off_state = static_cast<OffCpuState>(st);
      p.off_ns = static_cast<uint64_t>(static_cast<double>(t.weight) * 1000 * part + 0.5);
      p.count = static_cast<uint64_t>(static_cast<double>(t.samples) * part + 0.5);
      out.push_back(std::move(p));
    }
  }
}

double seconds_of(const IntervalRecord& r) { return std::max<int64_t>(0, r.end_unix_ns - r.start_unix_ns) / 1e9; }

std::string join_indexes(const std::vector<uint64_t>& v) {
  // Compact "3-7,9".
  std::string out;
  for (size_t i = 0; i < v.size();) {
    size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += std::to_string(v[i]);
    if (j > i) out += "-" + std::to_string(v[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace

std::vector<IntervalRange> parse_interval_ranges(const std::string& text) {
  std::vector<IntervalRange> out;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    try {
      size_t dash = part.find('-');
      size_t used = 0;
      IntervalRange r;
      r.first = std::stoull(part.substr(0, dash), &used);
      r.last = dash == std::string::npos ? r.first : std::stoull(part.substr(dash + 1));
      if (r.last < r.first) throw std::invalid_argument("reversed");
      out.push_back(r);
    } catch (const std::exception&) {
      throw Error("bad interval list \"" + text + "\": expected e.g. 3-7,9");
    }
  }
  if (out.empty()) throw Error("empty interval list");
  return out;
}

LocalizeResult localize_recording(const std::string& dir_name, const LocalizeOptions& options) {
  LocalizeResult result;
  result.directory = dir_name;
  fs::path dir = dir_name;
  fs::path log = dir / "intervals.jsonl";
  if (!fs::exists(log))
    throw Error(dir.string() + " has no intervals.jsonl: not a recording directory written by stackwatch record");
  std::vector<IntervalRecord> records = read_interval_log(log.string());

  // Details per stack identity from stacks.json.
  std::unordered_map<std::string, StackDetail> details;
  double hz = options.sample_hz;
  if (fs::exists(dir / "stacks.json")) {
    StacksFileMeta meta;
    for (StackSample& s : stacks_from_json(read_json_file(dir / "stacks.json"), &meta)) {
      StackDetail& d = details[stack_identity(s)];
      if (d.frames.empty()) d.frames = std::move(s.frames);
      if (s.kind == StackKind::kOffCpu)
        d.off_ns[std::min<size_t>(static_cast<size_t>(s.off_state), kOffStates - 1)] += static_cast<double>(s.off_ns);
    }
    if (hz <= 0 && meta.sample_hz > 0) hz = meta.sample_hz;
  }
  if (hz <= 0) hz = kDefaultSampleHz;

  // Probe results, by function name.
  std::map<std::string, FunctionLatency> probes;
  if (fs::exists(dir / "probes.json")) {
    nlohmann::json doc = read_json_file(dir / "probes.json");
    const nlohmann::json& list = doc.is_object() ? doc.value("functions", nlohmann::json::array()) : doc;
    for (const auto& j : list) {
      FunctionLatency f = function_latency_from_json(j);
      probes[f.function] = f;
    }
  }

  // Anomalous and baseline intervals.
  Flagged flagged;
  if (options.anomaly.empty()) {
    flagged = flagged_intervals(dir, records);
  } else {
    for (const IntervalRecord& r : records)
      if (in_ranges(r.index, options.anomaly)) flagged.intervals.insert(r.index);
  }
  if (flagged.intervals.empty()) {
    result.notes.push_back("no anomalous interval in " + log.string() + ": nothing to localize");
    return result;
  }
  const uint64_t first_anomaly = *flagged.intervals.begin();
  std::vector<const IntervalRecord*> anomaly, baseline;
  for (const IntervalRecord& r : records) {
    if (flagged.intervals.count(r.index))
      anomaly.push_back(&r);
    else if (!options.baseline.empty() ? in_ranges(r.index, options.baseline) : r.index < first_anomaly)
      baseline.push_back(&r);
  }
  if (baseline.empty() && options.baseline.empty()) {
    // The anomaly began with the recording: the normal intervals after it are the baseline.
    for (const IntervalRecord& r : records)
      if (!flagged.intervals.count(r.index)) baseline.push_back(&r);
  }
  if (anomaly.empty()) {
    result.notes.push_back("the anomalous intervals are not in " + log.string());
    return result;
  }

  std::vector<StackSample> anomaly_samples, baseline_samples;
  double anomaly_s = 0, baseline_s = 0;
  std::vector<uint64_t> anomaly_idx, baseline_idx;
  for (const IntervalRecord* r : anomaly) {
    append_samples(*r, details, anomaly_samples);
    anomaly_s += seconds_of(*r);
    anomaly_idx.push_back(r->index);
  }
  for (const IntervalRecord* r : baseline) {
    append_samples(*r, details, baseline_samples);
    baseline_s += seconds_of(*r);
    baseline_idx.push_back(r->index);
  }
  if (baseline.empty())
    result.notes.push_back("no normal interval to compare with: the ranking uses an empty baseline");

  // The processes to localize: named, else flagged, else all with samples in the anomaly.
  std::vector<std::string> processes;
  if (!options.process.empty()) {
    processes.push_back(options.process);
  } else {
    std::vector<std::pair<double, std::string>> by_weight;
    for (auto& [p, w] : flagged.processes) by_weight.emplace_back(-w, p);
    std::sort(by_weight.begin(), by_weight.end());
    for (auto& [w, p] : by_weight) processes.push_back(p);
    if (processes.empty()) {
      std::set<std::string> names;
      for (const StackSample& s : anomaly_samples) names.insert(s.process_name);
      processes.assign(names.begin(), names.end());
    }
  }

  RankOptions rank;
  rank.sample_hz = hz;
  rank.top = options.top;
  for (const std::string& p : processes) {
    ProcessLocalization loc;
    loc.process = p;
    loc.anomaly_intervals = anomaly_idx;
    loc.baseline_intervals = baseline_idx;
    loc.anomaly_seconds = anomaly_s;
    loc.baseline_seconds = std::max(baseline_s, 1e-9);
    ProcessFilter filter{0, p};
    loc.suspects = rank_suspects(baseline_samples, loc.baseline_seconds, anomaly_samples, anomaly_s, filter, rank);
    if (loc.suspects.empty()) continue;
    for (const Suspect& s : loc.suspects) {
      auto probe = probes.find(s.function.name);
      loc.hints.push_back(make_hint(s, probe != probes.end() ? &probe->second : nullptr));
    }
    result.processes.push_back(std::move(loc));
  }
  // Largest growth first, then keep the few that matter.
  std::stable_sort(result.processes.begin(), result.processes.end(),
                   [](const ProcessLocalization& a, const ProcessLocalization& b) {
                     return a.suspects.front().total_growth > b.suspects.front().total_growth;
                   });
  if (result.processes.size() > options.max_processes) result.processes.resize(options.max_processes);
  if (result.processes.empty()) result.notes.push_back("no function of the flagged processes grew in the anomaly");
  return result;
}

std::string format_hints(const LocalizeResult& r) {
  std::ostringstream out;
  for (const std::string& n : r.notes) out << n << "\n";
  for (const ProcessLocalization& p : r.processes) {
    char head[256];
    std::snprintf(head, sizeof head, "%s: anomaly in intervals %s (%.1f s), baseline %s (%.1f s)\n", p.process.c_str(),
                  join_indexes(p.anomaly_intervals).c_str(), p.anomaly_seconds,
                  p.baseline_intervals.empty() ? "none" : join_indexes(p.baseline_intervals).c_str(),
                  p.baseline_intervals.empty() ? 0.0 : p.baseline_seconds);
    out << head;
    for (size_t i = 0; i < p.suspects.size(); ++i) {
      const Suspect& s = p.suspects[i];
      char line[512];
      std::snprintf(line, sizeof line, "  %zu. %s (%s) explains %.0f%% of the change%s\n", i + 1,
                    s.function.name.c_str(), s.function.module.c_str(), s.share * 100,
                    s.probeable ? "" : " [not probeable]");
      out << line;
      if (!s.grown_path.empty()) {
        out << "     grew through:";
        for (const std::string& f : s.grown_path) out << " -> " << f;
        out << "\n";
      }
      out << "     hint: " << p.hints[i].sentence << "\n";
    }
  }
  return out.str();
}

nlohmann::json hints_to_json(const LocalizeResult& r) {
  nlohmann::json procs = nlohmann::json::array();
  for (const ProcessLocalization& p : r.processes) {
    nlohmann::json hints = nlohmann::json::array();
    for (const Hint& h : p.hints) hints.push_back(h.record);
    procs.push_back({{"process", p.process},
                     {"anomaly_intervals", p.anomaly_intervals},
                     {"baseline_intervals", p.baseline_intervals},
                     {"anomaly_seconds", p.anomaly_seconds},
                     {"baseline_seconds", p.baseline_intervals.empty() ? 0.0 : p.baseline_seconds},
                     {"hints", hints}});
  }
  return {{"version", 1}, {"directory", r.directory}, {"notes", r.notes}, {"processes", procs}};
}

std::vector<std::string> write_hints(const std::string& dir, const LocalizeResult& result) {
  std::string json_path = (fs::path(dir) / "hints.json").string();
  std::string text_path = (fs::path(dir) / "hints.txt").string();
  write_file_atomically(json_path, hints_to_json(result).dump(2) + "\n");
  write_file_atomically(text_path, format_hints(result));
  return {json_path, text_path};
}

}  // namespace stackwatch::localize
