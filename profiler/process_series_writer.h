// processes.csv: per-process load per interval, in long format (one row per
// process per interval), because the set of processes changes over time.
//
//   interval,tgid,comm,oncpu_samples,oncpu_share,off_ms_running,off_ms_interruptible,off_ms_uninterruptible
//   3,4242,redis-server,97,0.485,12.5,4000,0
//
// interval                 the interval number, as in series.csv
// tgid                     process id
// comm                     process name; RFC 4180-quoted when it holds a
//                          comma, a quote, a line break or edge spaces
// oncpu_samples            on-CPU stack samples of the process in the interval
// oncpu_share              its share of all on-CPU samples of the interval, 0..1
// off_ms_running           ms its threads spent off CPU while runnable
//                          (preempted, waiting in a run queue)
// off_ms_interruptible     ms off CPU sleeping (S: waits, poll, futex, sleep)
// off_ms_uninterruptible   ms off CPU in D state (mostly disk I/O)
// Off-CPU times sum over the process's threads, so they can exceed the
// interval's length.
//
// Rewritten atomically after each interval, like series.csv; beyond max_rows
// the oldest intervals are dropped whole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace stackwatch::load {

struct ProcessLoadRow {
  uint64_t interval = 0;
  uint32_t tgid = 0;
  std::string comm;
  uint64_t oncpu_samples = 0;
  double oncpu_share = 0;
  double off_ms_running = 0;
  double off_ms_interruptible = 0;
  double off_ms_uninterruptible = 0;
};

class ProcessSeriesWriter {
 public:
  static constexpr size_t kDefaultMaxRows = 100'000;

  explicit ProcessSeriesWriter(std::string path, size_t max_rows = kDefaultMaxRows);

  // Adds one interval's rows (possibly none: the file still gets its header)
  // and rewrites the file. Throws stackwatch::Error when it cannot be written;
  // the rows are kept for the next rewrite.
  void append(const std::vector<ProcessLoadRow>& rows);

  std::string text() const;
  size_t rows() const { return rows_.size(); }

 private:
  struct Row {
    uint64_t interval;
    std::string cells;
  };

  std::string path_;
  size_t max_rows_;
  std::deque<Row> rows_;
};

}  // namespace stackwatch::load
