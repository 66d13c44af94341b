// Off-CPU time: loads bpf/offcpu.bpf.c (tp_btf/sched_switch) and
// drains its double-buffered maps each interval.
#pragma once

#include <vector>

#include "profiler/bpf_handles.h"
#include "profiler/raw_stack.h"

struct offcpu_bpf;

namespace stackwatch::profiler {

class ProcessTracker;

class OffCpuSampler {
 public:
  struct Options {
    bool filter_targets = false;
    uint32_t max_stacks = 16384;     // per buffer
    uint32_t max_stack_ids = 65536;  // distinct stacks over the whole recording (32 MiB of kernel memory)
    uint32_t max_threads = 65536;    // threads off-CPU at once
    uint64_t min_block_ns = 1000000;
    bool copy_user_stacks = false;  // DWARF mode (see offcpu.bpf.c: copies at the syscall exit)
  };

  OffCpuSampler(const Options& options, const ProcessTracker& tracker);
  ~OffCpuSampler();
  OffCpuSampler(const OffCpuSampler&) = delete;
  OffCpuSampler& operator=(const OffCpuSampler&) = delete;

  RawInterval drain();
  // Entries of the in-flight map whose thread no longer exists: should be 0,
  // since an exiting thread deletes its own entry.
  uint64_t stale_thread_entries() const;
  // The stack map the kernel stack ids of off-CPU stack copies refer to.
  int stacks_fd() const;

 private:
  offcpu_bpf* skel_ = nullptr;
  std::vector<LinkPtr> links_;
  DropCounters drop_totals_;
};

}  // namespace stackwatch::profiler
