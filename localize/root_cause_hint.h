// Root-cause hints: from a suspect's evidence (suspect_ranking.h) and, when
// probes ran, its measured latency (FunctionLatency), the category of the
// cause and one plain sentence with the numbers, plus a structured record.
//
// Categories come from where the time went: on CPU (a CPU-bound loop), or
// blocked, and then from the kernel frames the blocked time sits under and
// the task state: disk I/O (fsync, jbd2, blk, io_schedule, file systems),
// lock contention (futex, mutex, rwsem), sleep/timer (nanosleep), network
// wait (sockets, poll, epoll), page faults/memory (fault handling, swap,
// reclaim); runnable-but-preempted time is waiting for a CPU. The rules read
// kernel function names only, so they hold for any program.
//
// FunctionLatency is the value type of one probed function's measurements
// (profiler/latency_probes.h fills it; probes.json stores it), defined here
// because the hint reads it and localize/ must not depend on the profiler.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "localize/call_graph.h"
#include "localize/suspect_ranking.h"

namespace stackwatch::localize {

enum class CauseCategory {
  kCpuBound,
  kDiskIo,
  kLockContention,
  kSleepTimer,
  kNetworkWait,
  kPageFaults,
  kCpuWait,    // runnable, waiting for a CPU
  kOtherWait,  // blocked in the kernel, nothing above says where
  kUnknown,    // no evidence
};

const char* to_string(CauseCategory category);  // "cpu_bound", "disk_io", ...
const char* explain(CauseCategory category);    // "the process waits on disk I/O"

// The category of blocked time under one kernel path (outermost first) below
// user frame `user_frame`, left in `state`.
CauseCategory classify_blocked(const std::string& user_frame, const std::vector<std::string>& kernel_frames,
                               OffCpuState state);

// "fdatasync -> ext4_sync_file -> jbd2_log_wait_commit": the user frame and
// the kernel frames that say what was waited for (syscall entry and
// scheduler plumbing left out).
std::string short_kernel_path(const std::string& user_frame, const std::vector<std::string>& kernel_frames);

// Blocked time of probed calls under one kernel path.
struct ProbeBlockedStack {
  std::vector<std::string> kernel_frames;  // outermost first
  OffCpuState state = OffCpuState::kOther;
  uint64_t ns = 0;
  uint64_t events = 0;
};

// On-CPU time of probed calls inside one system call.
struct ProbeSyscall {
  std::string name;  // "write"
  uint64_t ns = 0;   // on the CPU in the kernel (time blocked in it is in `blocked`)
  uint64_t calls = 0;
};

// The same function's latency before the anomaly, for comparison: what a
// probe measured on it during normal intervals, or, when none did, what
// the baseline's stacks say (a function never sampled before had no calls
// worth measuring: "no calls before").
struct BaselineLatency {
  bool measured = false;  // a probe ran on the function in a normal interval
  uint64_t interval = 0;  // the interval it ran in (measured)
  double seconds = 0;     // probe window (measured) or baseline stacks' length
  uint64_t calls = 0;
  uint64_t p50_ns = 0, p99_ns = 0, max_ns = 0;
  bool sampled = false;   // not measured: the function is in the baseline's stacks
  uint64_t rounds = 0;    // probe rounds pooled (measured)
  std::vector<uint64_t> log2_histogram;  // [i]: calls in [2^i, 2^(i+1)) ns (measured)

  nlohmann::json to_json() const;
};

BaselineLatency baseline_latency_from_json(const nlohmann::json& j);

// What the latency probes measured for one function.
struct FunctionLatency {
  std::string function;  // as requested or resolved (demangled)
  std::string module;    // ELF file path
  uint64_t file_offset = 0;
  uint32_t tgid = 0;     // 0: every process using the file
  double seconds = 0;    // probe window
  uint64_t calls = 0;    // completed calls
  uint64_t p50_ns = 0, p99_ns = 0, max_ns = 0;
  double mean_ns = 0;
  double on_cpu_share = 0;    // of the summed latency: on CPU (task run-time accounting)
  double syscall_cpu_share = 0;  // the part of on_cpu_share inside system calls (the kernel's work for the calls)
  double blocked_share = 0;   // sleeping (interruptible or uninterruptible)
  double runqueue_share = 0;  // runnable, waiting for a CPU
  double voluntary_switches_per_call = 0;
  double involuntary_switches_per_call = 0;
  std::vector<uint64_t> log2_histogram;  // [i]: calls with latency in [2^i, 2^(i+1)) ns
  std::vector<ProbeBlockedStack> blocked;  // largest first
  std::vector<ProbeSyscall> syscalls;      // on-CPU time by system call, largest first
  uint64_t dropped = 0;  // calls not measured (nesting too deep, maps full)
  std::optional<BaselineLatency> baseline;  // before the anomaly (record only)

  // p99 / baseline p99, 0 when either is unknown or zero.
  double p99_ratio() const;
  nlohmann::json to_json() const;
};

FunctionLatency function_latency_from_json(const nlohmann::json& j);

struct Hint {
  std::string process;
  std::string function;
  CauseCategory category = CauseCategory::kUnknown;
  std::string sentence;
  nlohmann::json record;
};

// From the ranking's evidence, with the probe's measurements when given.
Hint make_hint(const Suspect& suspect, const FunctionLatency* probe = nullptr);
// From a probe alone (stackwatch probe).
Hint make_hint(const FunctionLatency& probe);

// "23.8 s", "210 ms", "20 us", "850 ns".
std::string format_duration_ns(double ns);

}  // namespace stackwatch::localize
