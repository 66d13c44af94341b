// Which functions to measure as a latency baseline while a process runs
// normally, so that when an anomaly comes the probes' p99 can be compared
// with the same functions' p99 before it.
//
// The suspects of a future anomaly are unknown, but an anomaly in a function
// that already ran is one of the functions where the process spends its
// time: the candidates are the probeable functions (the probe-target view of
// the call graph, call_graph.h) by inclusive time, first the time that
// wants a CPU or waits on the disk (on-CPU, runnable, uninterruptible),
// then the other waits. A function absent from the normal stacks had no
// calls worth measuring; the hint says so instead ("no calls before").
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "localize/suspect_ranking.h"
#include "recording/recording.h"

namespace stackwatch::localize {

// The processes with the most demand (on-CPU + runnable + uninterruptible
// time, then interruptible waits) in `stacks`, at most `max`, busiest first.
std::vector<uint32_t> busiest_processes(const std::vector<StackSample>& stacks, double sample_hz, size_t max);

// At most `max` probeable functions of process `tgid`, as Suspects (score:
// inclusive demand in s/s) so that a probe plan can be made of them; keys
// (FunctionId::key) in `excluded` are skipped (functions that never return,
// or are called too often to probe cheaply).
std::vector<Suspect> baseline_candidates(const std::vector<StackSample>& stacks, double seconds, uint32_t tgid,
                                         double sample_hz, size_t max, const std::set<std::string>& excluded = {});

// True when function `id` of process tgid appears in `stacks`.
bool sampled_in(const std::vector<StackSample>& stacks, uint32_t tgid, const FunctionId& id);

}  // namespace stackwatch::localize
