// recording: what a recording is, as values, and how it is stored on disk.
//
// Every stage speaks these types: the profiler fills them from BPF maps, the
// symbolizer fills in Frames, localize/ and flamegraph/ read them (live or
// from a recording directory). This folder does no BPF, no /proc and no
// symbolization; it only defines the data and its file formats
// (stacks.json, atomic writes).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace stackwatch {

// One frame of a resolved stack. A raw address resolves to one or more
// Frames: the innermost inlined function first, the real (outer) function
// last, all with the same address.
struct Frame {
  uint64_t address = 0;        // address as sampled (runtime, in the process)
  std::string function;        // demangled name; empty when unknown
  std::string module;          // file path, "[kernel]", "[vdso]", "[jit]", or kernel module name
  uint64_t module_offset = 0;  // offset in the module (ELF file offset for user code)
  std::string build_id;        // lowercase hex, empty when unknown
  std::string file;            // source file, empty when unknown
  uint32_t line = 0;           // 0 when unknown
  uint32_t column = 0;         // 0 when unknown
  bool inlined = false;        // this frame was inlined into the next one
  bool kernel = false;         // kernel-space frame
  std::string unknown_reason;  // why the function is unknown (empty when known)

  // The name used in folded stacks and traces: the function, or
  // "module+0xoffset" when unnamed, never a bare address.
  std::string display_name() const;
};

// What a stack's numbers measure. kOnCpu and kOffCpu come from the CPU
// samplers; kMemory and kIo only with `record --memory` / `--io`, and their
// `detail` says which view of the resource an entry belongs to (see
// StackSample::detail).
enum class StackKind { kOnCpu, kOffCpu, kMemory, kIo };

const char* to_string(StackKind kind);  // "on" / "off" / "memory" / "io"
StackKind stack_kind_from_string(const std::string& name);  // throws Error on an unknown kind

// The state a thread left the CPU in (off-CPU stacks only).
enum class OffCpuState {
  kNone = 0,             // on-CPU stacks
  kRunning = 1,          // preempted while runnable: waited for a CPU
  kInterruptible = 2,    // sleeping: sockets, timers, futexes, pipes
  kUninterruptible = 3,  // usually disk I/O
  kOther = 4,
};

const char* to_string(OffCpuState state);  // "running", "interruptible", ...
OffCpuState off_cpu_state_from_string(const std::string& name);

// One aggregated stack of one thread in one interval (or over a whole
// recording): what stack_count printed per key.
struct StackSample {
  uint32_t tgid = 0;
  uint32_t tid = 0;
  std::string process_name;  // comm of the tgid (group leader)
  std::string thread_name;   // comm of the thread at sample time
  StackKind kind = StackKind::kOnCpu;
  std::vector<Frame> frames;  // innermost first: kernel frames, then user frames
  uint64_t count = 0;         // samples (on-CPU) or off-CPU events
  uint64_t off_ns = 0;        // blocked nanoseconds (off-CPU only)
  OffCpuState off_state = OffCpuState::kNone;
  // Memory and I/O stacks (zero for on/off-CPU):
  //   kMemory, detail "":           count = allocations still outstanding,
  //                                 bytes = bytes still outstanding (a level,
  //                                 not a rate: the interval's last value);
  //   kMemory, detail "page-fault": count = user page faults;
  //   kMemory, detail "double-free", "free-unknown", "realloc-freed",
  //                   "zero-size":  count = bad operations of that kind;
  //   kIo, detail "<op> <fd kind>" (e.g. "write file", "read socket",
  //                   "fsync file"): count = calls, bytes = bytes moved,
  //                                 latency_ns = summed time in the calls;
  //   kIo, detail "block read" / "block write" / "block flush": count = requests, bytes,
  //                                 latency_ns = summed issue-to-completion time.
  uint64_t bytes = 0;
  uint64_t latency_ns = 0;
  std::string detail;
  int64_t kernel_stack_id = -1;  // BPF stack ids: valid within one interval only
  int64_t user_stack_id = -1;
  std::optional<std::string> label;  // anomaly label, null when normal
};

// What could not be recorded; reported each interval and in stacks.json.
// The first three lose a stack, not the sample: it is still counted (with
// its time), under a stack that lacks the kernel or user part.
struct DropCounters {
  uint64_t kernel_stack_errors = 0;  // bpf_get_stackid failed for the kernel stack
  uint64_t user_stack_errors = 0;    // bpf_get_stackid failed for the user stack
  uint64_t stack_map_full = 0;       // -EEXIST (hash collision) / -ENOMEM from the stack map
  uint64_t counts_map_full = 0;      // the aggregation hash was full: samples lost
  uint64_t other = 0;                // ring buffer full and the like: samples lost
  // DWARF mode: the stack-copy ring was full, so the event was counted with
  // its frame-pointer stack instead. Not a drop (not in total()): the event
  // is kept; an off-CPU block's outer frames may be missing, an I/O call is
  // given to the copied stacks it shares its innermost frames with.
  uint64_t copy_ring_full = 0;

  uint64_t total() const {
    return kernel_stack_errors + user_stack_errors + stack_map_full + counts_map_full + other;
  }
  uint64_t lost_samples() const { return counts_map_full + other; }
  uint64_t missing_stacks() const { return kernel_stack_errors + user_stack_errors + stack_map_full; }
  DropCounters& operator+=(const DropCounters& o);
};

struct Interval {
  uint64_t index = 0;
  int64_t start_unix_ns = 0;
  int64_t end_unix_ns = 0;
  std::vector<StackSample> stacks;
  DropCounters drops;
};

}  // namespace stackwatch
