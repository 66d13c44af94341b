// /proc/stat: CPU time counters per CPU and in total, context switches,
// forks, and the instantaneous run-queue / blocked counts (proc(5)).
// Parsing only; the arithmetic over two readings is in load_snapshot.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace stackwatch::load {

// One "cpu" / "cpuN" line, in USER_HZ ticks. Fields a kernel does not print
// (old kernels have fewer columns) stay 0.
struct CpuTimes {
  uint64_t user = 0;
  uint64_t nice = 0;
  uint64_t system = 0;
  uint64_t idle = 0;
  uint64_t iowait = 0;
  uint64_t irq = 0;
  uint64_t softirq = 0;
  uint64_t steal = 0;
  uint64_t guest = 0;       // already included in user (kernel/sched/cputime.c)
  uint64_t guest_nice = 0;  // already included in nice
};

struct CpuLine {
  int cpu = 0;  // N of "cpuN"; offline CPUs have no line at all
  CpuTimes times;
};

struct ProcStat {
  std::optional<CpuTimes> total;  // the "cpu" line
  std::vector<CpuLine> cpus;      // "cpuN" lines, in file order
  std::optional<uint64_t> ctxt;           // context switches since boot
  std::optional<uint64_t> processes;      // forks since boot
  std::optional<uint64_t> procs_running;  // runnable tasks now
  std::optional<uint64_t> procs_blocked;  // tasks in uninterruptible I/O wait now
};

// Lines that are not understood (intr, softirq, btime, a malformed line) are
// skipped; a field that is missing stays nullopt. Never throws: this runs
// every interval, where failures are counted, not thrown.
ProcStat parse_proc_stat(std::string_view text);

}  // namespace stackwatch::load
