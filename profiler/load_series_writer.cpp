// series.csv writer (see load_series_writer.h).
#include "profiler/load_series_writer.h"

#include <algorithm>
#include <limits>

#include "profiler/csv_cells.h"
#include "recording/atomic_file.h"
#include "recording/error.h"

namespace stackwatch::load {
namespace {

constexpr std::string_view kMissing = "nan";

}  // namespace

LoadSeriesWriter::LoadSeriesWriter(std::string path, size_t max_rows)
    : path_(std::move(path)), max_rows_(std::max<size_t>(1, max_rows)) {}

size_t LoadSeriesWriter::column_index(const std::string& name) {
  auto it = std::find(columns_.begin(), columns_.end(), name);
  if (it != columns_.end()) return static_cast<size_t>(it - columns_.begin());
  columns_.push_back(name);
  return columns_.size() - 1;
}

void LoadSeriesWriter::append(const LoadSnapshot& snapshot, const std::vector<NamedValue>& extra) {
  std::vector<double> cells;
  std::vector<bool> given;  // to catch a name given twice
  auto put = [&](const NamedValue& v) {
    if (v.name == "interval" || v.name == "start" || v.name == "end")
      throw Error("series column name '" + v.name + "' is reserved in " + path_);
    size_t i = column_index(v.name);
    if (cells.size() <= i) {
      cells.resize(i + 1, std::numeric_limits<double>::quiet_NaN());
      given.resize(i + 1, false);
    }
    if (given[i]) throw Error("series column '" + v.name + "' given twice for " + path_);
    given[i] = true;
    cells[i] = v.value;
  };
  for (const auto& v : snapshot.values) put(v);
  for (const auto& v : extra) put(v);
  cells.resize(columns_.size(), std::numeric_limits<double>::quiet_NaN());

  Row row;
  row.cells = std::to_string(snapshot.interval) + ',' + format_iso8601_utc(snapshot.start_unix_ns) + ',' +
              format_iso8601_utc(snapshot.end_unix_ns);
  for (double c : cells) {
    row.cells += ',';
    row.cells += format_csv_number(c);
  }
  row.columns = columns_.size();
  rows_.push_back(std::move(row));
  while (rows_.size() > max_rows_) rows_.pop_front();
  write_file_atomically(path_, text());
}

std::string LoadSeriesWriter::text() const {
  std::string out = "interval,start,end";
  for (const auto& c : columns_) {
    out += ',';
    out += csv_quote(c);
  }
  out += '\n';
  for (const auto& row : rows_) {
    out += row.cells;
    for (size_t i = row.columns; i < columns_.size(); ++i) {
      out += ',';
      out += kMissing;
    }
    out += '\n';
  }
  return out;
}

}  // namespace stackwatch::load
