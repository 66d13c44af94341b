// Suspect ranking: which functions of a process explain an anomaly by
// themselves, given its call graph in a baseline and in the anomaly.
//
// Weights are turned into rates (thread-seconds per second: on-CPU samples /
// sample rate, blocked ns / 1e9, each over the length of its interval set),
// so baseline and anomaly sets of different lengths compare. On the
// probe-target view of the graph (call_graph.h: libc, kernel, inlined and
// unnamed code charged to the nearest probeable caller), each function gets
//
//   growth(f)   = inclusive rate in the anomaly - inclusive rate in the baseline
//   own(f)      = growth(f) - max(0, largest growth of a call edge f -> callee)
//
// so a function whose growth all sits in one callee passes it down: main and
// the event loop that merely contain the slow function score ~0, the slow
// function itself scores its growth, and a function whose growth is spread
// over several callees (or is its own) keeps it. Suspects are ordered by
// own growth; share = own / total positive self growth of the process.
//
// Evidence per suspect: baseline vs anomaly rates (on-CPU, blocked per
// state), the share of the change, the path below it that grew most (on the
// full graph, into libc and the kernel) and the kernel paths its blocked
// time sits under.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "localize/call_graph.h"
#include "recording/recording.h"

namespace stackwatch::localize {

struct RankOptions {
  double sample_hz = 49;  // on-CPU sampling rate: samples -> CPU seconds
  size_t top = 5;         // suspects returned at most
  // Suspects explaining less than this share of the growth are noise.
  double min_share = 0.05;
};

// One process over a set of intervals.
struct ProcessProfile {
  CallGraph functions{GraphView::kFunctions};
  CallGraph targets{GraphView::kProbeTargets};
  double seconds = 0;  // length of the interval set
};

ProcessProfile build_profile(const std::vector<StackSample>& stacks, const ProcessFilter& filter, double seconds);

// Blocked time under one kernel path, as rates (s/s) per state.
struct BlockedEvidence {
  std::string user_frame;                  // innermost user frame ("fdatasync")
  std::vector<std::string> kernel_frames;  // outermost first
  StateArray baseline{};
  StateArray anomaly{};
  double growth() const { return sum(anomaly) - sum(baseline); }
};

struct Suspect {
  std::string process;
  uint32_t tgid = 0;
  FunctionId function;
  std::string module_path;  // what to attach a probe to (a basename offline)
  bool probeable = false;
  double score = 0;            // own growth, thread-seconds per second
  double share = 0;            // score / total growth (0..1)
  double inclusive_share = 0;  // inclusive growth / total growth
  double baseline_on = 0;      // inclusive on-CPU rate (CPU s/s)
  double anomaly_on = 0;
  StateArray baseline_off{};   // inclusive blocked rate by state (s/s)
  StateArray anomaly_off{};
  std::vector<std::string> grown_path;   // below the suspect, by largest growth
  std::vector<BlockedEvidence> blocked;  // largest growth first, at most 3
  double total_growth = 0;     // of the process, s/s

  nlohmann::json to_json() const;
};

Suspect suspect_from_json(const nlohmann::json& j);

std::vector<Suspect> rank_suspects(const ProcessProfile& baseline, const ProcessProfile& anomaly,
                                   const RankOptions& options = {});

// Convenience for the record loop: stacks of the baseline and anomaly
// intervals (any process; the filter picks one), with their lengths.
std::vector<Suspect> rank_suspects(const std::vector<StackSample>& baseline, double baseline_seconds,
                                   const std::vector<StackSample>& anomaly, double anomaly_seconds,
                                   const ProcessFilter& process, const RankOptions& options = {});

}  // namespace stackwatch::localize
