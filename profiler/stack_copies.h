// DWARF mode: consumes the stack copies BPF sends through the stack_samples
// ring buffer (see sw_stack_sample in bpf/stackwatch.h), unwinds each user
// stack with the CFI unwinder, and aggregates the results into RawStacks the
// way the kernel aggregates frame-pointer stacks, so the rest of the
// pipeline does not know which kind of unwinding produced a stack.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "profiler/bpf_handles.h"
#include "profiler/raw_stack.h"
#include "symbolizer/symbolizer.h"
#include "unwinder/unwinder.h"

namespace stackwatch::profiler {

class OffCpuSampler;

// Stacks that could not be completed, by reason (reported, never invented).
struct UnwindReport {
  uint64_t stacks = 0;
  uint64_t complete = 0;
  std::map<std::string, uint64_t> incomplete;  // reason -> stacks
};

class StackCopies {
 public:
  // ring_fd: the stack_samples ring buffer; offcpu: where the kernel stack
  // ids of off-CPU copies are read (nullptr if off-CPU is not recorded).
  StackCopies(int ring_fd, const OffCpuSampler* offcpu, symbolizer::Symbolizer& symbolizer);
  ~StackCopies();
  StackCopies(const StackCopies&) = delete;
  StackCopies& operator=(const StackCopies&) = delete;

  // Also consumes this ring of copies (another program's, e.g. I/O calls).
  void add_ring(int ring_fd);
  // Unwinds everything in the ring buffers now.
  void consume();
  // Everything aggregated since the last call (after a final consume()).
  std::vector<RawStack> take();
  UnwindReport take_report();
  void forget_process(uint32_t tgid) {
    unwinder_.forget_process(tgid);
    maps_.erase(tgid);
    unwound_.erase(tgid);
  }

 private:
  static int on_sample(void* ctx, void* data, size_t size);
  void handle(const struct sw_stack_sample& s);
  // Counts one event under raw's stack: ns is off-CPU time, or an I/O
  // call's time (with its bytes).
  void add(RawStack raw, uint64_t ns, uint64_t bytes = 0);
  // The symbolizer's snapshot of tgid's mappings, copied once per interval.
  const std::vector<symbolizer::Mapping>& mappings_of(uint32_t tgid);

  RingBufferPtr ring_;
  const OffCpuSampler* offcpu_;
  symbolizer::Symbolizer& symbolizer_;
  unwinder::Unwinder unwinder_;
  unwinder::UnwindResult result_;
  std::unordered_map<std::string, RawStack> pending_;  // aggregation key -> stack
  std::unordered_map<uint32_t, std::vector<symbolizer::Mapping>> maps_;
  // Processes with per-process state here and in the symbolizer. Most
  // short-lived ones are never reported exited (only those sampled on-CPU
  // are), so take() checks them: one found gone is forgotten two take()s
  // later, once its last stacks have been symbolized.
  std::unordered_set<uint32_t> unwound_;
  std::vector<uint32_t> gone_[2];  // found gone at the last take(), and the one before
  UnwindReport report_;
};

}  // namespace stackwatch::profiler
