// LatencyProbes: uprobe + uretprobe pairs on functions of a process, for a
// bounded time, measuring every call (bpf/latency.bpf.c): latency histogram,
// p50/p99/max, on-CPU vs blocked vs runnable time, context switches, and the
// kernel stacks where the calls blocked.
//
// RAII: the constructor loads and attaches everything or throws
// stackwatch::Error (having detached what it attached); the destructor
// detaches on every path. Probes are perf events of the kernel's uprobe PMU
// held by file descriptors, so even a killed stackwatch leaves none behind
// (the kernel drops them with the last fd); the legacy tracefs interface,
// whose probes outlive their creator, is refused.
//
// The record loop:
//   auto plan = plan_probes(pid, suspects);           // top 5 probeable
//   LatencyProbes probes(plan.targets, {.pid = pid, .seconds = 10});
//   ... every interval: if (probes.expired() || anomaly over) -> report(), destroy
#pragma once

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "localize/root_cause_hint.h"
#include "localize/suspect_ranking.h"
#include "profiler/uprobe_target.h"

namespace stackwatch::profiler {

struct LatencyProbeOptions {
  int pid = -1;          // -1: every process that runs the probed files
  double seconds = 10;   // expired() after this long
};

class LatencyProbes {
 public:
  LatencyProbes(std::vector<ProbeTarget> targets, const LatencyProbeOptions& options);
  ~LatencyProbes();
  LatencyProbes(const LatencyProbes&) = delete;
  LatencyProbes& operator=(const LatencyProbes&) = delete;

  // One entry per target, in order; readable while attached.
  std::vector<localize::FunctionLatency> report() const;
  // Detaches now (the destructor does it too); report() still works after.
  void detach();

  bool expired() const { return elapsed_seconds() >= options_.seconds; }
  double elapsed_seconds() const;
  const std::vector<ProbeTarget>& targets() const { return targets_; }
  uint64_t dropped() const;  // calls or blocks not measured, every probe together

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<ProbeTarget> targets_;
  LatencyProbeOptions options_;
  std::chrono::steady_clock::time_point started_;
  mutable double frozen_seconds_ = -1;  // window length once detached
};

// Detaching uprobes costs the kernel about 100 ms per probe (RCU grace
// periods under a mutex, so not in parallel either): 8 functions take well
// over a second. The record loop hands its finished probes here (after
// reading their report) and keeps its interval; the destructor waits until
// every probe is gone, so none outlives stackwatch's own exit path.
class BackgroundDetacher {
 public:
  BackgroundDetacher() = default;
  ~BackgroundDetacher() { wait(); }
  BackgroundDetacher(const BackgroundDetacher&) = delete;
  BackgroundDetacher& operator=(const BackgroundDetacher&) = delete;

  void detach(std::unique_ptr<LatencyProbes> probes);
  void wait();

 private:
  std::vector<std::future<void>> pending_;
};

// The targets for the top suspects of process pid: probeable ones first
// (user code, not libc) and libc functions only if none is; at most `max`.
// Suspects that cannot be resolved are listed in `skipped` with the reason.
struct ProbePlan {
  std::vector<ProbeTarget> targets;
  std::vector<size_t> suspect_index;  // per target: its suspect in the list given
  std::vector<std::string> skipped;
};
ProbePlan plan_probes(int pid, const std::vector<localize::Suspect>& suspects, size_t max = 5);

// True when the kernel has the uprobe PMU (perf_event_open uprobes).
bool has_uprobe_pmu();

}  // namespace stackwatch::profiler
