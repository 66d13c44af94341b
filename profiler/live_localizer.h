// The record loop's localizer: when the detector flags an interval, picks the
// processes that changed (the most anomalous weight, and any other with a
// fair part of it), ranks each one's suspect functions against a baseline
// of the normal intervals before (localize/), draws the differential flame
// graph, attaches latency probes to the top suspects for a bounded time,
// and prints and writes the root-cause hints (hints.json, hints.txt,
// probes.json). The probes' p99 is compared with the same function's p99
// before the anomaly, measured by the baseline rounds of LatencyBaseline
// during the normal intervals.
//
// The baseline is the normal intervals among the last 21, kept compact
// (baseline_history.h): a few MB on a churning machine, rebuilt as
// StackSamples of one process when an anomaly needs them.
//
// Never leaves a probe attached: probes are detached when their time is
// up, when the anomaly has been over for two intervals, and by finish() and
// the destructor on every way out.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "localize/interval_monitor.h"
#include "localize/localize_pipeline.h"
#include "profiler/baseline_history.h"
#include "profiler/latency_baseline.h"
#include "profiler/latency_probes.h"
#include "recording/recording.h"

namespace stackwatch::profiler {

class LiveLocalizer {
 public:
  struct Options {
    std::string output_dir;
    double sample_hz = 49;
    bool probes = true;
    // Baseline rounds: probe the busiest functions for one interval in ten
    // while nothing is anomalous, so an anomaly's p99 has a "before". Off
    // by default: the probes cost each probed call a trap (~10-15 us) and,
    // in DWARF mode, a sample taken under a pending uretprobe loses the
    // frames above the probed function (the return address is the uprobe
    // trampoline's while the call runs).
    bool baseline_probes = false;
    double probe_seconds = 10;
    std::FILE* report = stdout;  // nullptr: quiet
  };

  explicit LiveLocalizer(Options options);
  ~LiveLocalizer();

  // Once per interval, after the detector has labelled its stacks.
  void on_interval(const Interval& interval, double seconds, const std::vector<localize::Anomaly>& anomalies);
  // Reports and detaches probes still attached, and writes the files.
  void finish();

  // The intervals kept for the baseline (memory stays flat: see baseline_history.h).
  const BaselineHistory& history() const { return history_; }

 private:
  // The probes of one anomalous process.
  struct ProbeSession {
    uint32_t tgid = 0;
    size_t process = 0;  // in result_.processes
    uint64_t interval = 0;  // of the anomaly that attached them
    ProbePlan plan;
    std::vector<localize::BaselineLatency> before;  // per target
    std::unique_ptr<LatencyProbes> probes;
  };
  struct Changed {
    uint32_t tgid = 0;
    std::string name;
    double weight = 0;  // anomalous (labelled) thread-seconds
  };
  using Baseline = BaselineHistory::Baseline;
  // The processes with labelled stacks, most anomalous weight first.
  std::vector<Changed> changed_processes(const Interval& interval) const;
  // The normal intervals kept, those before interval `until` only, with
  // the stacks of process tgid (0: all).
  Baseline baseline_stacks(uint32_t tgid, uint64_t until = UINT64_MAX) const;
  // The most anomalous process, when its top suspect is outside what is
  // being probed.
  std::optional<uint32_t> anomaly_moved(const Interval& interval, double seconds) const;
  // The changed processes of the interval (or only `only`), but those being probed.
  void localize(const Interval& interval, double seconds, std::optional<uint32_t> only = std::nullopt);
  void localize_process(uint32_t tgid, const std::string& name, const Interval& interval, double seconds);
  // Reports and detaches the probes (of process `only`, or all).
  void finish_probes(std::optional<uint32_t> only = std::nullopt);
  void write_files();
  void say(const std::string& line);

  Options options_;
  BackgroundDetacher detacher_;  // before the probes: destroyed after them
  BaselineHistory history_;
  LatencyBaseline baseline_;
  std::vector<ProbeSession> sessions_;
  size_t normal_since_probe_ = 0;
  localize::LocalizeResult result_;
  std::vector<localize::FunctionLatency> probe_reports_;
};

}  // namespace stackwatch::profiler
