// Sampling perf events, one per online CPU: hardware cycles where the kernel
// offers them, else the software cpu-clock event (VMs without a PMU).
#pragma once

#include <string>
#include <vector>

#include "profiler/bpf_handles.h"

namespace stackwatch::profiler {

struct SamplingEvents {
  std::vector<UniqueFd> fds;  // index i belongs to cpus[i]
  std::vector<int> cpus;
  std::string event_name;     // "cycles" or "cpu-clock"
};

// Parses a CPU list like "0-3,5,7-8" (/sys/devices/system/cpu/online).
std::vector<int> parse_cpu_list(const std::string& text);
std::vector<int> online_cpus();

// Highest rate the kernel allows (kernel.perf_event_max_sample_rate), or 0 if unknown.
unsigned max_sample_rate();

// Opens one frequency-mode sampling event per online CPU at `hz`.
SamplingEvents open_sampling_events(unsigned hz);

}  // namespace stackwatch::profiler
