// Offline detection on a series file (`stackwatch detect FILE.csv`).
//
// Input: a header row, a timestamp column (ISO 8601 such as
// "2014-04-10 07:15:00" or "2014-04-10T07:15:00Z", or epoch seconds) and one
// or more numeric columns. The timestamp column is the one named timestamp,
// time, date, datetime or ts, else the first. By default every other column
// is a series, except label columns named is_anomaly, anomaly, label or
// changepoint (as in the Yahoo and NAB files); `columns` selects explicitly.
// Output: per row, the timestamp as given and, per series, its score
// (score / threshold of its UnivariateDetector: above 1 is anomalous, 0
// during warm-up) and a 0/1 anomaly label.
#pragma once

#include <cstddef>
#include <istream>
#include <ostream>
#include <string>
#include <vector>

namespace stackwatch::localize {

// Seconds since the epoch; throws stackwatch::Error if `text` is neither a
// number nor ISO 8601 (date, optional time, optional Z or +HH:MM).
double parse_timestamp(const std::string& text);

// Splits one CSV line (commas, optional double quotes, "" escapes).
std::vector<std::string> split_csv_line(const std::string& line);

struct SeriesRow {
  size_t line = 0;        // 1-based line number in the file
  std::string timestamp;  // as written
  double time_s = 0;
  std::vector<double> values;  // one per selected column
};

class SeriesCsvReader {
 public:
  // Reads the header. `source` names the input in errors.
  SeriesCsvReader(std::istream& in, std::string source, const std::vector<std::string>& columns = {});

  const std::string& timestamp_column() const { return header_[time_col_]; }
  const std::vector<std::string>& columns() const { return names_; }

  // Next data row; false at the end. Throws stackwatch::Error naming the line.
  bool next(SeriesRow& row);

 private:
  [[noreturn]] void fail(size_t line, const std::string& what) const;

  std::istream& in_;
  std::string source_;
  size_t line_ = 0;
  std::vector<std::string> header_;
  size_t time_col_ = 0;
  std::vector<size_t> cols_;
  std::vector<std::string> names_;
};

struct DetectCsvSummary {
  size_t rows = 0;
  std::vector<size_t> anomalies;  // per column
};

// Runs one UnivariateDetector per column over the file, writing the labelled
// CSV to `out`.
DetectCsvSummary detect_series_csv(SeriesCsvReader& reader, std::ostream& out, double risk);

}  // namespace stackwatch::localize
