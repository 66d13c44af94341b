// LoadMonitor: the machine's load per interval, for the record loop.
//
//   load::LoadMonitor monitor;              // at recording start (reads /proc)
//   ... each interval end:
//   load::LoadSnapshot snap = monitor.sample();
//   std::puts(load::format_load_summary(snap).c_str());
//   series.append(snap);                     // series.csv (load_series_writer.h)
//   for (auto& v : snap.values) detector.add(v.name, v.value);
//   if (threshold.exceeded(snap)) ...         // --load-threshold (load_threshold.h)
//
// It reads /proc/stat, /proc/loadavg and /proc/pressure/{cpu,io,memory}:
// about 45 us per sample() on a 2-CPU VM, no privileges. What the values mean is
// in load_snapshot.h and docs/series.md. It does not know about processes or
// stacks; per-process values go through process_series_writer.h.
#pragma once

#include <cstdint>
#include <functional>

#include "profiler/load_snapshot.h"
#include "profiler/proc_reader.h"

namespace stackwatch::load {

struct ClockReading {
  int64_t monotonic_ns = 0;
  int64_t unix_ns = 0;
};

// CLOCK_MONOTONIC and CLOCK_REALTIME, read back to back.
ClockReading read_clocks();

class LoadMonitor {
 public:
  using Clock = std::function<ClockReading()>;

  // Takes the first reading, which starts the first interval. Throws
  // stackwatch::Error when <root>/stat cannot be read (no /proc mounted):
  // that is a set-up problem. Later unreadable files are not errors; their
  // values are NaN or absent and read_failures() counts them.
  explicit LoadMonitor(ProcReader reader = ProcReader(), Clock clock = read_clocks);

  // The load since the previous sample() (or construction); the next
  // interval starts now. Interval numbers count from 0.
  LoadSnapshot sample();

  // Starts a new interval now without producing one (after a pause, or to
  // skip a warm-up), keeping the interval numbering.
  void restart();

  // Readings of /proc/stat that failed so far (the file vanished, say).
  uint64_t read_failures() const { return read_failures_; }

 private:
  LoadReading read();

  ProcReader reader_;
  Clock clock_;
  LoadReading previous_;
  uint64_t next_interval_ = 0;
  uint64_t read_failures_ = 0;
};

}  // namespace stackwatch::load
