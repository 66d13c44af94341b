// `stackwatch localize DIR`: the localizer offline, on a recording directory.
//
// Reads intervals.jsonl (required: the per-interval stacks), stacks.json
// (optional: full frames with kernel flags, off-CPU states, the sample
// rate), anomalies.jsonl (optional: which intervals and processes were
// anomalous; without it the detector is replayed on intervals.jsonl) and
// probes.json (optional: the latency probes the recorder ran). Per anomalous
// process it builds the call graph of the anomalous intervals and of a
// baseline before them, ranks the suspects and gives a hint per suspect;
// then writes hints.json and hints.txt into the directory.
//
// It does not sample, probe or symbolize: everything comes from the files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "localize/root_cause_hint.h"
#include "localize/suspect_ranking.h"

namespace stackwatch::localize {

struct IntervalRange {
  uint64_t first = 0, last = 0;  // inclusive interval indexes
};

struct LocalizeOptions {
  size_t top = 5;               // suspects per process
  size_t max_processes = 3;     // anomalous processes localized
  std::string process;          // only this process name (empty: as flagged)
  std::vector<IntervalRange> anomaly;   // explicit anomalous intervals (empty: from the detector)
  std::vector<IntervalRange> baseline;  // explicit baseline (empty: the normal intervals before)
  double sample_hz = 0;         // 0: from stacks.json, else 49
};

struct ProcessLocalization {
  std::string process;
  std::vector<uint64_t> anomaly_intervals;
  std::vector<uint64_t> baseline_intervals;
  double anomaly_seconds = 0, baseline_seconds = 0;
  std::vector<Suspect> suspects;
  std::vector<Hint> hints;  // one per suspect, same order
};

struct LocalizeResult {
  std::string directory;
  std::vector<ProcessLocalization> processes;
  std::vector<std::string> notes;  // why something could not be localized
};

// Throws stackwatch::Error when DIR is not a recording or a file is malformed.
LocalizeResult localize_recording(const std::string& dir, const LocalizeOptions& options = {});

std::string format_hints(const LocalizeResult& result);  // hints.txt
nlohmann::json hints_to_json(const LocalizeResult& result);  // hints.json
// Writes DIR/hints.json and DIR/hints.txt atomically; returns their paths.
std::vector<std::string> write_hints(const std::string& dir, const LocalizeResult& result);

// "3-7,9" -> ranges; throws stackwatch::Error on bad syntax.
std::vector<IntervalRange> parse_interval_ranges(const std::string& text);

}  // namespace stackwatch::localize
