// LatencyBaseline: what the suspects' latency was before an anomaly.
//
// The probes of an anomaly attach after it is flagged, so by themselves they
// cannot say whether a p99 is new. While nothing is anomalous, this class
// now and then probes, for one interval, the functions where the busiest
// processes spend their time (localize/baseline_candidates.h), and keeps
// each function's p50/p99/max. A round counts only if the interval it ran
// in was normal, and, for an anomaly, only if it ran a few intervals before
// the anomaly was flagged (the detector may flag the lead-up of an anomaly
// late). The anomaly's probes look their functions up by (process, file,
// offset).
//
// Cost is bounded: one round at a time, one interval long, at most every
// `every` intervals, at most `functions` functions; functions that completed
// no call in a round (main, thread loops) or were called too often to
// probe cheaply are left out of later rounds.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "localize/root_cause_hint.h"
#include "profiler/latency_probes.h"
#include "recording/recording.h"

namespace stackwatch::profiler {

class LatencyBaseline {
 public:
  struct Options {
    double sample_hz = 49;
    size_t functions = 8;    // probed per round
    size_t first_after = 3;  // normal intervals seen before the first round
    size_t every = 10;       // intervals from one round's start to the next
    std::FILE* report = nullptr;
  };

  // Intervals between a round and an anomaly it may serve as the baseline
  // of: the detector may flag the start of an anomaly a few intervals late,
  // and a round in that lead-up would measure the anomaly itself.
  static constexpr uint64_t kLeadUp = 3;

  explicit LatencyBaseline(Options options);
  ~LatencyBaseline();

  // At the end of interval `index`: ends the round that ran during it, kept
  // when the interval was normal.
  void end_interval(uint64_t index, bool normal);
  // Whether a round should start now, for the next interval.
  bool due(uint64_t index, size_t normal_intervals) const;
  // Starts a round (when due) from the stacks of recent normal intervals.
  void start(uint64_t index, const std::vector<StackSample>& normal_stacks, double seconds);
  // Detaches a running round (in the background); its measurements are dropped.
  void stop();
  // stop(), and waits until every probe of every round is detached.
  void finish();

  // The baseline of function (binary, offset) in process tgid for an
  // anomaly flagged in interval `anomaly`: the rounds before its lead-up,
  // pooled (their calls together: one slow call among a round's few is not
  // the p99 of three rounds); the latest round's own percentiles when it is
  // the only one.
  std::optional<localize::BaselineLatency> find(uint32_t tgid, const std::string& binary, uint64_t file_offset,
                                                uint64_t anomaly) const;

 private:
  struct Round {
    uint64_t interval = 0;  // the interval it runs in
    uint32_t tgid = 0;
    std::vector<ProbeTarget> targets;
    std::vector<std::string> keys;  // per target: its function's key
    std::unique_ptr<LatencyProbes> probes;
    std::vector<localize::FunctionLatency> results;
  };
  using Key = std::tuple<uint32_t, std::string, uint64_t>;
  void say(const std::string& line) const;
  void end_round(bool keep);

  Options options_;
  BackgroundDetacher detacher_;  // first: destroyed last, after every round
  std::optional<Round> running_;
  std::map<Key, std::vector<localize::BaselineLatency>> measured_;  // oldest first, a few
  std::map<uint32_t, std::set<std::string>> excluded_;  // per process: function keys
  std::map<uint32_t, uint64_t> last_round_;             // per process: interval of its last round
  size_t rotation_ = 0;
  std::optional<uint64_t> last_start_;
};

}  // namespace stackwatch::profiler
