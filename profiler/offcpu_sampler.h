// Off-CPU time: loads bpf/offcpu.bpf.c (tp_btf/sched_switch) and
// drains its double-buffered maps each interval, recycling its stack maps
// (offcpu_stack_ids.h) so a long recording keeps them bounded.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "profiler/bpf_handles.h"
#include "profiler/offcpu_stack_ids.h"
#include "profiler/raw_stack.h"

struct offcpu_bpf;

namespace stackwatch::profiler {

class ProcessTracker;

class OffCpuSampler {
 public:
  struct Options {
    bool filter_targets = false;
    uint32_t max_stacks = 16384;     // per buffer
    // Entries of the two stack maps together (32 MiB of kernel memory); each
    // holds the stacks one interval takes (kernel and user ones count
    // separately), since they are recycled in turn.
    uint32_t max_stack_ids = 65536;
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
  // The stack of an off-CPU stack id (of a count key or of a block of a
  // stack copy), innermost first; false if there is none.
  bool read_stack(int32_t stack_id, std::vector<uint64_t>& ips) const;
  // Stacks of sleeping threads answered from user space (their map was recycled).
  size_t copied_stacks() const;

 private:
  class BpfStackMaps;
  // Every stack id still in flight in the kernel: threads off the CPU now,
  // blocks waiting for their stack copy, the counts being filled.
  std::vector<int32_t> ids_in_flight() const;

  offcpu_bpf* skel_ = nullptr;
  std::vector<LinkPtr> links_;
  DropCounters drop_totals_;
  std::unique_ptr<BpfStackMaps> stack_maps_;
  std::unique_ptr<OffCpuStackIds> stack_ids_;
};

}  // namespace stackwatch::profiler
