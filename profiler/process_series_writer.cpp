// processes.csv writer (see process_series_writer.h).
#include "profiler/process_series_writer.h"

#include <algorithm>

#include "profiler/csv_cells.h"
#include "recording/atomic_file.h"

namespace stackwatch::load {
namespace {

// A share is a fraction: 6 decimals keep a process at 1 sample in 10^5.
constexpr int kShareDecimals = 6;

}  // namespace

ProcessSeriesWriter::ProcessSeriesWriter(std::string path, size_t max_rows)
    : path_(std::move(path)), max_rows_(std::max<size_t>(1, max_rows)) {}

void ProcessSeriesWriter::append(const std::vector<ProcessLoadRow>& rows) {
  for (const auto& r : rows) {
    std::string cells = std::to_string(r.interval) + ',' + std::to_string(r.tgid) + ',' + csv_quote(r.comm) + ',' +
                        std::to_string(r.oncpu_samples) + ',' + format_csv_number(r.oncpu_share, kShareDecimals) + ',' +
                        format_csv_number(r.off_ms_running) + ',' + format_csv_number(r.off_ms_interruptible) + ',' +
                        format_csv_number(r.off_ms_uninterruptible);
    rows_.push_back({r.interval, std::move(cells)});
  }
  // Drop whole intervals, oldest first, but never the newest one: a reader
  // never sees an interval with only some of its processes.
  while (rows_.size() > max_rows_ && rows_.front().interval != rows_.back().interval) {
    uint64_t oldest = rows_.front().interval;
    while (!rows_.empty() && rows_.front().interval == oldest) rows_.pop_front();
  }
  write_file_atomically(path_, text());
}

std::string ProcessSeriesWriter::text() const {
  std::string out =
      "interval,tgid,comm,oncpu_samples,oncpu_share,off_ms_running,off_ms_interruptible,off_ms_uninterruptible\n";
  for (const auto& row : rows_) {
    out += row.cells;
    out += '\n';
  }
  return out;
}

}  // namespace stackwatch::load
