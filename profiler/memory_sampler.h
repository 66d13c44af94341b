// Memory stacks (`record --memory`): loads bpf/memory.bpf.c, which puts
// uprobes/uretprobes on the allocator entry points of the targets' libc
// (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign, valloc,
// pvalloc, mmap, munmap, free; reallocarray is a call to realloc in glibc
// and musl, and is seen there) and keeps, per allocating stack, the bytes
// and allocations still outstanding (matched by address, so a block freed
// by another thread is matched right); counts bad frees and zero-size
// allocations per stack, and user page faults per stack. Only the target
// processes (-p, a COMMAND and its followed children) are recorded.
//
// Where the probes go: add_process(pid) probes that one process (the kernel
// puts breakpoints in its memory only, other processes run untouched); it
// keeps probing it across an exec. add_process(getpid()) probes our own
// libc file in every process that maps it (breakpoints machine-wide, each
// call filtered in BPF by the target set): the way to cover a COMMAND and
// the children it forks, at the price of a trap per allocator call in
// every other process using that libc while recording.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "profiler/bpf_handles.h"
#include "profiler/raw_stack.h"

struct memory_bpf;

namespace stackwatch::profiler {

class ProcessTracker;

class MemorySampler {
 public:
  struct Options {
    uint32_t max_allocations = 1u << 20;  // live allocations tracked at once
    uint32_t max_stacks = 16384;          // distinct allocating stacks
    // Allocations per second per CPU beyond which they are not tracked (and
    // counted), and the same bound for page faults: bounds the BPF work and
    // the maps, not the trap every probed call costs (see memory.bpf.c).
    // Frees are never dropped. 0: no limit.
    uint64_t max_events_per_second = 0;
    bool page_faults = true;
    // The processes were followed from their start (a COMMAND): a free of an
    // address never seen allocated is a bad free. With -p, blocks allocated
    // before the recording started are freed normally, so it is not.
    bool traced_from_start = false;
    // DWARF mode: page faults go through a stack-copy ring (stack_copies_fd)
    // and are unwound by StackCopies; allocations keep frame-pointer stacks.
    bool copy_user_stacks = false;
  };

  MemorySampler(const Options& options, const ProcessTracker& tracker);
  ~MemorySampler();
  MemorySampler(const MemorySampler&) = delete;
  MemorySampler& operator=(const MemorySampler&) = delete;

  // Probes the allocator of the libc this process maps (see the top of this
  // file: getpid() means every process mapping our libc). Call for each -p
  // target and, for a COMMAND, before its exec. Throws stackwatch::Error
  // when the process maps no C library or its allocator cannot be probed;
  // a process that has already exited is skipped.
  void add_process(uint32_t tgid);
  // kind kMemory stacks: the outstanding level of every allocating stack
  // (detail ""), this interval's page faults and bad operations. A probed
  // process that has exited is reported one last time, then forgotten.
  RawInterval drain();
  // Allocator events and page faults not recorded since the start, for any
  // reason (rate limit, full maps, stacks that could not be taken).
  uint64_t dropped_events() const;
  // The ring of the page faults' stack copies (for StackCopies::add_ring).
  int stack_copies_fd() const;

  // Why events were not recorded, since the start.
  struct LostEvents {
    uint64_t rate_limited = 0;         // allocations over max_events_per_second
    uint64_t faults_rate_limited = 0;  // page faults over max_events_per_second
    uint64_t allocations_full = 0;     // max_allocations live blocks already tracked
    uint64_t stacks_full = 0;          // max_stacks allocating stacks already tracked
    uint64_t threads_full = 0;         // the per-thread call map was full
    uint64_t read_failed = 0;          // posix_memalign's result could not be read
    uint64_t total() const {
      return rate_limited + faults_rate_limited + allocations_full + stacks_full + threads_full + read_failed;
    }
  };
  LostEvents lost_events() const;
  // Which page-fault source is in use: "page_fault_user" (tracepoint),
  // "page-faults" (software perf event), or "" when off.
  const std::string& fault_source() const { return fault_source_; }

 private:
  void attach_libc(const std::string& path, int pid);
  void forget_exited();

  memory_bpf* skel_ = nullptr;
  std::vector<LinkPtr> program_links_;
  std::vector<UniqueFd> fault_events_;
  std::map<uint32_t, std::vector<LinkPtr>> links_;  // by probed pid; 0: machine-wide
  std::set<std::string> probed_libraries_;          // probed machine-wide
  std::set<uint32_t> probed_pids_;
  DropCounters drop_totals_;
  LostEvents lost_reported_;  // totals at the last drain
  Options options_;
  std::string fault_source_;
};

}  // namespace stackwatch::profiler
