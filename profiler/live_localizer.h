// The record loop's localizer: when the detector flags an interval, picks the
// process that changed, ranks its suspect functions against a baseline of
// the normal intervals before (localize/), draws the differential flame
// graph, attaches latency probes to the top suspects for a bounded time, and
// prints and writes the root-cause hints (hints.json, hints.txt,
// probes.json). Never leaves a probe attached: probes are detached when
// their time is up, when the anomaly has been over for two intervals, and by
// finish() and the destructor on every way out.
#pragma once

#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "localize/interval_monitor.h"
#include "localize/localize_pipeline.h"
#include "profiler/latency_probes.h"
#include "recording/recording.h"

namespace stackwatch::profiler {

class LiveLocalizer {
 public:
  struct Options {
    std::string output_dir;
    double sample_hz = 49;
    bool probes = true;
    double probe_seconds = 10;
    std::FILE* report = stdout;  // nullptr: quiet
  };

  explicit LiveLocalizer(Options options);
  ~LiveLocalizer();

  // Once per interval, after the detector has labelled its stacks.
  void on_interval(const Interval& interval, double seconds, const std::vector<localize::Anomaly>& anomalies);
  // Reports and detaches probes still attached, and writes the files.
  void finish();

 private:
  struct Past {
    uint64_t index;
    double seconds;
    bool anomalous;
    std::vector<StackSample> stacks;
  };
  void localize(const Interval& interval, double seconds);
  void finish_probes();
  void write_files();
  void say(const std::string& line);

  Options options_;
  std::deque<Past> history_;
  std::unique_ptr<LatencyProbes> probes_;
  ProbePlan plan_;
  size_t normal_since_probe_ = 0;
  localize::LocalizeResult result_;
  std::vector<localize::FunctionLatency> probe_reports_;
};

}  // namespace stackwatch::profiler
