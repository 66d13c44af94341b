// Process tracking: owns the maps every BPF program shares (the pid filter,
// the "seen" set, the process-event ring buffer) and the fork/exec/exit
// programs; snapshots a process's mappings through the symbolizer as soon as
// BPF first sees it, so a process that exits before the interval ends still
// gets names.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "profiler/bpf_handles.h"
#include "profiler/exited_processes.h"
#include "symbolizer/symbolizer.h"

struct proc_bpf;
struct sw_proc_event;

namespace stackwatch::profiler {

class ProcessTracker {
 public:
  struct Options {
    bool filter_targets = false;   // record only targets (and their followed children)
    bool follow_children = false;  // add children of targets on fork
    uint32_t max_processes = 65536;
    // Ring buffer for DWARF-mode stack copies (~17 KiB each); the minimum
    // when stacks are walked with frame pointers.
    uint32_t stack_samples_bytes = 4096;
  };

  ProcessTracker(const Options& options, symbolizer::Symbolizer& symbolizer);
  ~ProcessTracker();
  ProcessTracker(const ProcessTracker&) = delete;
  ProcessTracker& operator=(const ProcessTracker&) = delete;

  void add_target(uint32_t tgid);
  void remove_target(uint32_t tgid);
  int targets_fd() const;
  int seen_fd() const;
  int events_fd() const;
  int stack_samples_fd() const;
  // BPF's per-thread stack tops (stack_tops in bpf/common.bpf.h), shared
  // like the ring by every program that copies stacks.
  int stack_tops_fd() const;
  int targets_count() const;
  // Ring buffer readiness fd for poll().
  int poll_fd() const;
  // Handles pending process events without blocking.
  void consume_events();

  // The name of a process (its group leader's comm), or "" when unknown.
  std::string process_name(uint32_t tgid) const;
  // Called after each drain: forgets the snapshots of processes that exited
  // and are gone (reaped), since every sample of theirs has now been
  // symbolized; a zombie is kept (see exited_processes.h). Returns the tgids
  // forgotten.
  std::vector<uint32_t> after_drain();
  uint64_t events_handled() const { return events_handled_; }

 private:
  static int on_event(void* ctx, void* data, size_t size);
  void handle(const ::sw_proc_event& e);

  Options options_;
  symbolizer::Symbolizer& symbolizer_;
  proc_bpf* skel_ = nullptr;
  std::vector<LinkPtr> links_;
  RingBufferPtr ring_;
  std::unordered_map<uint32_t, std::string> names_;
  ExitedProcesses exited_;
  uint64_t events_handled_ = 0;
};

}  // namespace stackwatch::profiler
