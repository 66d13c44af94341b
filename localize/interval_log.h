// The interval log of a recording directory: intervals.jsonl, one line per
// interval, appended by the recorder and replayed by `stackwatch detect DIR`.
// It holds exactly what the detector reads, so a replay reproduces the live
// run's anomalies and labels.
//
//   {"index": 12, "start_unix_ns": N, "end_unix_ns": N,
//    "stacks": [{"key": 0, "id": "on:comm;outermost;...;innermost",
//                "process": "comm", "kind": "on"|"off",
//                "frames": ["outermost", ..., "innermost"],
//                "modules": ["app", ..., "libc.so.6"],
//                "weight": N, "samples": N},
//               {"key": 0, "weight": N, "samples": N}, ...],
//    "load": {"cpu_util": 0.42, ...}}
//
// A stack is written in full (id, process, kind, frames, modules) the first
// time it appears in the log, with a small integer "key"; later lines give
// only the key, so the log stays small with thousands of stacks (an entry
// without "key" must be in full). A stack absent from the log for long is
// written in full again, under a new key, when it comes back. One entry per stack identity (process
// name + kind + frame display names, DESIGN.md), in order of first
// appearance in the Interval; threads are merged. weight is what the
// detector measures: samples for on-CPU stacks, blocked microseconds for
// off-CPU stacks; samples is the event count. modules are file basenames
// ("[kernel]" for the kernel), so a function's identity (module + function)
// can be rebuilt. Doubles round-trip exactly.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "localize/json_lines.h"
#include "recording/recording.h"

namespace stackwatch::localize {

struct StackTotal {
  std::string id;        // stack identity, see stack_identity()
  std::string process;
  StackKind kind = StackKind::kOnCpu;
  std::vector<std::string> frames;   // display names, outermost first
  std::vector<std::string> modules;  // module basename per frame
  uint64_t weight = 0;   // on-CPU: samples; off-CPU: blocked microseconds
  uint64_t samples = 0;  // events behind the weight
};

struct IntervalRecord {
  uint64_t index = 0;
  int64_t start_unix_ns = 0;
  int64_t end_unix_ns = 0;
  std::vector<StackTotal> stacks;
  std::map<std::string, double> load;  // load series by name
};

// "on:comm;outermost;...;innermost" (folded order, so it reads like a flame
// graph row).
std::string stack_identity(const StackSample& sample);

// Merges the Interval's samples by stack identity. If sample_to_stack is
// given, it receives, per sample, the index of its entry in `stacks`. If
// `known` says a stack identity is already known to the reader of the
// record, its frames and modules are left empty (they cost most of the time).
IntervalRecord summarize_interval(const Interval& interval, const std::map<std::string, double>& load,
                                  std::vector<uint32_t>* sample_to_stack = nullptr,
                                  const std::function<bool(const std::string&)>& known = {});

// A self-contained line: every stack in full, no keys.
nlohmann::json interval_to_json(const IntervalRecord& record);

// Appends intervals to an intervals.jsonl, each stack in full only on its
// first appearance. Give it every record from the first interval on (the
// records IntervalMonitor::observe hands out carry frames exactly for the
// stacks it had not seen, which are the ones this writer has not written).
//
// Memory stays flat on a churning machine: the writer keeps, per stack it
// has written, a 64-bit hash of the identity (not its text) and forgets
// stacks absent from kForgetAfter records in a row. That is longer than
// IntervalMonitor keeps an absent stack (kStaleIntervals + kForgetEvery,
// static_assert in interval_monitor.cpp), so every stack this writer has
// forgotten, the monitor has too, and its next record carries its frames.
// (Two identities with the same hash among the stacks of the last few
// minutes: about 1 in 10^10 with 100,000 of them; the second would be
// logged under the first one's key.)
class IntervalLogWriter {
 public:
  static constexpr uint64_t kForgetAfter = 40;
  static constexpr uint64_t kForgetEvery = 8;  // records between forgetting passes

  explicit IntervalLogWriter(const std::string& path) : out_(path) {}
  // Throws stackwatch::Error if the line cannot be written (its new stacks
  // are then not taken as written).
  void append(const IntervalRecord& record);

  // Stacks whose key later lines may use.
  size_t key_count() const { return keys_.size(); }

 private:
  struct Key {
    uint64_t key = 0;
    uint64_t last_seen = 0;  // records appended when it was last in one
  };
  JsonLinesWriter out_;
  std::unordered_map<uint64_t, Key> keys_;  // by std::hash of the identity
  uint64_t next_key_ = 0;
  uint64_t appended_ = 0;
};

// Reads an intervals.jsonl, filling in keyed stacks from their first
// appearance. Errors name the file and line.
std::vector<IntervalRecord> read_interval_log(const std::string& path);

}  // namespace stackwatch::localize
