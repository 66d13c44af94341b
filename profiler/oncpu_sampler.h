// On-CPU sampling: loads bpf/oncpu.bpf.c, attaches it to one sampling perf
// event per online CPU, and drains its double-buffered maps each interval.
#pragma once

#include <string>
#include <vector>

#include "profiler/bpf_handles.h"
#include "profiler/perf_events.h"
#include "profiler/raw_stack.h"

struct oncpu_bpf;

namespace stackwatch::profiler {

class ProcessTracker;

class OnCpuSampler {
 public:
  struct Options {
    unsigned hz = 49;
    bool filter_targets = false;
    uint32_t max_stacks = 16384;  // per buffer: counts entries and stack map entries
    bool copy_user_stacks = false;  // DWARF mode: send stack copies instead of walking frame pointers
  };

  OnCpuSampler(const Options& options, const ProcessTracker& tracker);
  ~OnCpuSampler();
  OnCpuSampler(const OnCpuSampler&) = delete;
  OnCpuSampler& operator=(const OnCpuSampler&) = delete;

  const std::string& event_name() const { return events_.event_name; }
  size_t cpu_count() const { return events_.cpus.size(); }
  // Flips the buffers and returns everything recorded since the last drain.
  RawInterval drain();

 private:
  oncpu_bpf* skel_ = nullptr;
  SamplingEvents events_;
  std::vector<LinkPtr> links_;
  DropCounters drop_totals_;
};

}  // namespace stackwatch::profiler
