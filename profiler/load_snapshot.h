// The machine's load over one interval, as named values, and the arithmetic
// that turns two raw readings of /proc (interval start and end) into them.
//
// Value names (stable: they are the columns of series.csv, the series names
// the anomaly detector sees, and what --load-threshold accepts; documented in
// docs/series.md). Percentages are 0..100 of the interval.
//   cpu_util            all CPUs busy: user+nice+system+irq+softirq+steal
//                       over that plus idle+iowait. guest and guest_nice are
//                       left out of both sums: the kernel already counts them
//                       inside user and nice, so adding them double counts.
//   cpu_iowait          all CPUs idle with I/O outstanding (part of not-busy)
//   cpuN_util           the same as cpu_util for CPU N (kernel numbering)
//   runq                procs_running at interval end (includes the reader)
//   blocked             procs_blocked at interval end (uninterruptible I/O)
//   load1 load5 load15  /proc/loadavg at interval end
//   psi_cpu_some psi_io_some psi_io_full psi_mem_some psi_mem_full
//                       stalled share of the interval, from the delta of the
//                       PSI total (us) over the interval's length
//   psi_*_avg10         the kernel's 10-second average at interval end
//   ctxt_per_s          context switches per second over the interval
//   forks_per_s         processes created per second over the interval
// psi_cpu_full is left out: the kernel reports it as constant 0 at the
// system level (it is only defined for cgroups). A value whose source file
// is absent in both readings is absent; absent in one of them, it is NaN.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "profiler/loadavg_parser.h"
#include "profiler/pressure_parser.h"
#include "profiler/proc_stat_parser.h"

namespace stackwatch::load {

// One raw reading of /proc at one moment.
struct LoadReading {
  int64_t monotonic_ns = 0;  // for rates: immune to clock steps
  int64_t unix_ns = 0;       // for the timestamps people read
  ProcStat stat;
  std::optional<LoadAvg> loadavg;
  std::optional<Pressure> psi_cpu;
  std::optional<Pressure> psi_io;
  std::optional<Pressure> psi_memory;
};

struct NamedValue {
  std::string name;
  double value = 0;
  bool operator==(const NamedValue&) const = default;
};

struct LoadSnapshot {
  uint64_t interval = 0;  // 0, 1, 2, ... in the order LoadMonitor produced them
  int64_t start_unix_ns = 0;
  int64_t end_unix_ns = 0;
  std::vector<NamedValue> values;  // in the documented order

  // NaN when the value is absent (or was not computable).
  double value(std::string_view name) const;
  bool has(std::string_view name) const;
};

LoadSnapshot compute_load_snapshot(const LoadReading& start, const LoadReading& end);

// Whether `name` is one of the value names above (cpuN_util for any N):
// what --load-threshold accepts.
bool is_load_value_name(std::string_view name);

// Whether the value is a percentage of the interval (0..100).
bool is_percent_value_name(std::string_view name);

// Busy and total ticks of one CPU line, with the guest fields left out (see
// above); exposed for the tests of the arithmetic.
uint64_t busy_ticks(const CpuTimes& t);
uint64_t total_ticks(const CpuTimes& t);

}  // namespace stackwatch::load
