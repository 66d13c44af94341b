// series.csv: the machine's load per interval, one row per interval.
//
//   interval,start,end,cpu_util,cpu_iowait,cpu0_util,cpu1_util,runq,blocked,load1,...
//   0,2026-11-23T13:30:56.000Z,2026-11-23T13:31:01.000Z,87.5,0.25,99,76,4,0,2.31,...
//
// interval   0, 1, 2, ... (LoadSnapshot::interval)
// start,end  ISO 8601 UTC with milliseconds (wall clock at the two readings)
// then one column per load value, named and ordered as in load_snapshot.h
// (docs/series.md has the full list and units), then the caller's extra
// columns in the order first given. A column that appears later (a CPU came
// online, the caller added a value) is added at the end and is "nan" in the
// earlier rows; a value missing from a row is "nan". Numbers have at most 3
// decimals. `stackwatch detect series.csv` reads it directly (header row,
// timestamp column `start`, numeric columns).
//
// The whole file is rewritten atomically (write_file_atomically) after each
// row, so a crash or kill leaves the previous complete file. The rows are
// kept in memory, formatted (about 200 bytes a row on 2 CPUs); beyond
// max_rows the oldest are dropped, which bounds memory and the rewrite cost
// (100,000 rows is 5.8 days at 5 s intervals, about 20 MB).
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <vector>

#include "profiler/load_snapshot.h"

namespace stackwatch::load {

class LoadSeriesWriter {
 public:
  static constexpr size_t kDefaultMaxRows = 100'000;

  explicit LoadSeriesWriter(std::string path, size_t max_rows = kDefaultMaxRows);

  // Adds one row and rewrites the file. Throws stackwatch::Error when the
  // file cannot be written (the row is kept and is in the next rewrite), or
  // when a column name is given twice in one row.
  void append(const LoadSnapshot& snapshot, const std::vector<NamedValue>& extra = {});

  // The file's contents as of the last append.
  std::string text() const;

  const std::vector<std::string>& columns() const { return columns_; }  // value columns
  size_t rows() const { return rows_.size(); }
  const std::string& path() const { return path_; }

 private:
  struct Row {
    std::string cells;   // "interval,start,end,v1,...,vk", no newline
    size_t columns = 0;  // k: value columns known when the row was added
  };

  size_t column_index(const std::string& name);

  std::string path_;
  size_t max_rows_;
  std::vector<std::string> columns_;
  std::deque<Row> rows_;
};

}  // namespace stackwatch::load
