// IntervalMonitor: the live detector. The record loop calls observe() once per
// interval with the symbolized Interval and the load values; it returns the
// anomalies of that interval and labels the anomalous StackSamples.
//
// Series watched, each by its own UnivariateDetector (univariate_detector.h):
//   stack    "stack on:comm;outer;...;inner"   weight per stack identity
//   function "function on:module!function"     inclusive weight (once per stack)
//   process  "process on:comm"                 weight per process name
//   load     "load NAME"                       each load value given
// plus the stack mix, one StackMixDetector per kind (on-CPU, off-CPU).
// Weights are samples (on-CPU) or blocked microseconds (off-CPU). A series
// first seen after the warm-up starts from a history of zeros, so a new stack
// that takes a large share is flagged at once.
//
// Flags of one category in one interval are grouped into one Anomaly. Stack,
// function and process flags also need a material effect: a change of at
// least 1% of the interval's samples (on-CPU, and at least 3 samples) or of
// 1% of the interval's length in blocked time (off-CPU), so that a rare
// stack going from 0 to 4 samples among thousands is not an event.
//
// Memory: about a kilobyte per series, and the series are bounded, so a long
// recording of a churning machine (thousands of short-lived processes, each
// with its own stacks) stays flat. Stacks absent for kStaleIntervals
// intervals are forgotten (with the functions and processes only they had),
// and the numbers of stack, function and process series are capped
// (kMaxStacks, kMaxFunctions, kMaxProcesses): past a cap the least recently
// seen stacks go first. A forgotten stack that comes back is new again.
//
// Not here: ranking suspects on the call graph, probes, hints (localizer).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "localize/interval_log.h"
#include "localize/stack_mix_detector.h"
#include "localize/univariate_detector.h"
#include "recording/recording.h"

namespace stackwatch::localize {

struct Contributor {
  std::string series;  // e.g. "stack on:app;main;spin", "load cpu_util"
  // Mix anomalies: fraction of the divergence due to this stack (0..1).
  // Other anomalies: value - expected, in the series' units.
  double contribution = 0;
};

struct Anomaly {
  uint64_t interval_index = 0;
  int64_t start_unix_ns = 0;
  int64_t end_unix_ns = 0;
  // "<category>_<change>": category stack, function, process, load; change
  // spike, dip, level_shift, variance. Or "new_stack" / "stack_mix" (mix).
  std::string kind;
  double score = 0;      // of the top series: standardized score, or mix distance
  double threshold = 0;  // the threshold that score exceeded
  std::vector<Contributor> top;  // largest first
  std::string description;       // one line for a person
};

struct MonitorConfig {
  double risk = 1e-4;  // SPOT risk per score and series
  int top_k = 5;       // contributors per anomaly
};

class IntervalMonitor {
 public:
  // A stack absent this many intervals in a row is forgotten: 2 minutes at
  // the default 5 s. By then the detector has little left to lose: the mix
  // baseline (an EWMA of gain 0.1) holds 0.9^24 = 8% of the stack's old
  // share, and a returning stack is compared with a history of zeros as
  // long as the warm-up (16 intervals), which is what 24 absent intervals
  // were. Longer only keeps the stacks of processes that are gone (a churn
  // of short-lived processes leaves thousands of them a minute).
  static constexpr uint64_t kStaleIntervals = 24;
  // Stale stacks are looked for every kForgetEvery intervals: one pass over
  // the series, as much as one interval's detection, every 8 intervals.
  static constexpr uint64_t kForgetEvery = 8;
  // Caps on the series, checked after each interval. Past a cap the least
  // recently seen stacks (then the lightest in their last interval) are
  // forgotten until every count is at most 7/8 of its cap, so the pass that
  // renumbers the series runs at most once per kMax/8 new stacks. A few
  // thousand stacks is more than the busiest machines show in 2 minutes
  // beside rare ones that weigh well under the 1% effect gate (and when one
  // interval alone has more, the heaviest are the ones kept). At about 1 KB
  // per series (detector, name, index entry) the caps bound the detector
  // to about 11 MB.
  static constexpr size_t kMaxStacks = 4096;
  static constexpr size_t kMaxFunctions = 6144;
  static constexpr size_t kMaxProcesses = 1024;

  explicit IntervalMonitor(const MonitorConfig& config = {});
  ~IntervalMonitor();

  // Live path: summarizes the interval, detects, and appends the labels of
  // this interval's anomalies to the anomalous StackSamples' `label`. If
  // `record` is given it receives the summary for IntervalLogWriter.
  std::vector<Anomaly> observe(Interval& interval, const std::map<std::string, double>& load,
                               IntervalRecord* record = nullptr);

  // Replay path (and the live path's core). If stack_labels is given it
  // receives, per record.stacks entry, the label for this interval ("" if none).
  std::vector<Anomaly> observe(const IntervalRecord& record, std::vector<std::string>* stack_labels = nullptr);

  size_t series_count() const { return series_.size(); }
  size_t stack_count() const { return stacks_.size(); }
  size_t function_count() const { return function_index_.size(); }
  size_t process_count() const { return process_index_.size(); }

 private:
  enum class Category : uint8_t { kStack, kFunction, kProcess, kLoad };
  struct Series {
    std::string name;
    Category category;
    StackKind kind;
    UnivariateDetector detector;
  };
  struct StackEntry {
    uint32_t series;
    uint32_t process;
    uint32_t slot;  // in the mix of its kind
    StackKind kind;
    std::vector<uint32_t> functions;  // distinct function series of the stack
    uint64_t last_seen = 0;           // interval count when it last had weight
    uint64_t last_weight = 0;         // its weight then (the cap keeps heavy stacks)
  };
  struct Flag {
    uint32_t series;
    double value;
    UnivariateResult result;
  };

  uint32_t add_series(std::string name, Category category, StackKind kind, SeriesKind series_kind);
  uint32_t series_for(std::unordered_map<std::string, uint32_t>& index, const std::string& name,
                      Category category, StackKind kind);
  uint32_t stack_for(const StackTotal& stack);
  bool over_cap() const;
  // Forgets stale stacks and, past a cap, the least recently seen ones.
  void forget_stacks();
  // Drops the stacks with keep_stack[i] == 0, and the series only they used.
  void drop_stacks(const std::vector<uint8_t>& keep_stack);

  MonitorConfig config_;
  uint64_t intervals_ = 0;
  std::deque<Series> series_;  // grows without copying (a vector briefly held two)
  std::vector<double> values_;  // this interval's value per series
  std::unordered_map<std::string, uint32_t> stack_index_;
  std::unordered_map<std::string, uint32_t> function_index_;
  std::unordered_map<std::string, uint32_t> process_index_;
  std::unordered_map<std::string, uint32_t> load_index_;
  std::vector<StackEntry> stacks_;
  std::vector<uint32_t> slot_stack_[2];  // mix slot -> stack entry, per kind
  Eigen::ArrayXd mix_weights_[2];
  std::unique_ptr<StackMixDetector> mix_[2];
};

// "new_stack@12 2026-11-23T13:30:05Z": which anomaly, in which interval, when.
std::string anomaly_label(const Anomaly& anomaly);
// Merges `add` (one or more "; "-separated labels) into a StackSample
// label, skipping those already there: use it to aggregate over intervals.
void add_label(std::optional<std::string>& label, const std::string& add);
// ISO 8601 UTC with seconds, e.g. "2026-11-23T13:30:05Z".
std::string format_unix_ns(int64_t unix_ns);

// One line of anomalies.jsonl: interval, time, kind, score, threshold, top, description.
nlohmann::json anomaly_to_json(const Anomaly& anomaly);

}  // namespace stackwatch::localize
