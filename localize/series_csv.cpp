// Series CSV reading, timestamp parsing and the offline detect loop
// (see series_csv.h).
#include "localize/series_csv.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "localize/univariate_detector.h"
#include "recording/error.h"

namespace stackwatch::localize {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// Parses all of `text` as a finite double.
bool parse_number(const std::string& text, double& out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && errno != ERANGE && std::isfinite(out);
}

// stackwatch's own series.csv (docs/series.md): interval,start,end,<values>.
bool is_bookkeeping_column(const std::string& name) {
  std::string n = lower(name);
  return n == "interval" || n == "end";
}

bool is_label_column(const std::string& name) {
  std::string n = lower(name);
  return n == "is_anomaly" || n == "anomaly" || n == "label" || n == "changepoint";
}

}  // namespace

double parse_timestamp(const std::string& raw) {
  std::string text = trim(raw);
  double number;
  if (parse_number(text, number)) return number;
  int year, month, day, hour = 0, minute = 0, used = 0;
  double second = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%n", &year, &month, &day, &used) != 3 || used != 10)
    throw Error("\"" + raw + "\" is not a timestamp (ISO 8601 or epoch seconds)");
  size_t pos = 10;
  if (pos < text.size() && (text[pos] == 'T' || text[pos] == ' ')) {
    int n = 0;
    if (std::sscanf(text.c_str() + pos + 1, "%2d:%2d%n", &hour, &minute, &n) != 2 || n != 5)
      throw Error("\"" + raw + "\" is not a timestamp (bad time of day)");
    pos += 1 + n;
    if (pos < text.size() && text[pos] == ':') {
      char* end = nullptr;
      second = std::strtod(text.c_str() + pos + 1, &end);
      if (end == text.c_str() + pos + 1) throw Error("\"" + raw + "\" is not a timestamp (bad seconds)");
      pos = static_cast<size_t>(end - text.c_str());
    }
  }
  int offset_s = 0;
  if (pos < text.size()) {
    char sign = text[pos];
    int oh = 0, om = 0, n = 0;
    if (sign == 'Z' && pos + 1 == text.size()) {
      pos += 1;
    } else if ((sign == '+' || sign == '-') &&
               (std::sscanf(text.c_str() + pos + 1, "%2d:%2d%n", &oh, &om, &n) == 2 ||
                std::sscanf(text.c_str() + pos + 1, "%2d%2d%n", &oh, &om, &n) == 2) &&
               pos + 1 + n == text.size()) {
      offset_s = (sign == '+' ? 1 : -1) * (oh * 3600 + om * 60);
      pos = text.size();
    } else {
      throw Error("\"" + raw + "\" is not a timestamp (unexpected \"" + text.substr(pos) + "\")");
    }
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second < 0 || second >= 61)
    throw Error("\"" + raw + "\" is not a valid date and time");
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  return static_cast<double>(timegm(&tm)) + second - offset_s;
}

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(trim(field));
      field.clear();
    } else {
      field += c;
    }
  }
  fields.push_back(trim(field));
  return fields;
}

SeriesCsvReader::SeriesCsvReader(std::istream& in, std::string source, const std::vector<std::string>& columns)
    : in_(in), source_(std::move(source)) {
  std::string line;
  while (std::getline(in_, line)) {
    ++line_;
    if (!trim(line).empty()) break;
  }
  if (trim(line).empty()) throw Error(source_ + ": empty file, expected a header row");
  header_ = split_csv_line(line);
  if (header_.size() < 2) fail(line_, "the header needs a timestamp column and at least one series column");
  time_col_ = 0;
  for (size_t i = 0; i < header_.size(); ++i) {
    std::string n = lower(header_[i]);
    if (n == "timestamp" || n == "time" || n == "date" || n == "datetime" || n == "ts" || n == "start") {
      time_col_ = i;
      break;
    }
  }
  if (!columns.empty()) {
    for (const std::string& want : columns) {
      auto it = std::find(header_.begin(), header_.end(), want);
      if (it == header_.end()) fail(line_, "no column named \"" + want + "\" in the header");
      if (static_cast<size_t>(it - header_.begin()) == time_col_)
        fail(line_, "\"" + want + "\" is the timestamp column");
      cols_.push_back(static_cast<size_t>(it - header_.begin()));
    }
  } else {
    for (size_t i = 0; i < header_.size(); ++i)
      if (i != time_col_ && !is_label_column(header_[i]) && !is_bookkeeping_column(header_[i])) cols_.push_back(i);
  }
  if (cols_.empty()) fail(line_, "no series column besides the timestamp and label columns");
  for (size_t c : cols_) names_.push_back(header_[c].empty() ? "column" + std::to_string(c + 1) : header_[c]);
}

void SeriesCsvReader::fail(size_t line, const std::string& what) const {
  throw Error(source_ + ":" + std::to_string(line) + ": " + what);
}

bool SeriesCsvReader::next(SeriesRow& row) {
  std::string line;
  while (std::getline(in_, line)) {
    ++line_;
    if (trim(line).empty()) continue;
    std::vector<std::string> fields = split_csv_line(line);
    if (fields.size() != header_.size())
      fail(line_, "expected " + std::to_string(header_.size()) + " fields as in the header, found " +
                      std::to_string(fields.size()));
    row.line = line_;
    row.timestamp = fields[time_col_];
    try {
      row.time_s = parse_timestamp(row.timestamp);
    } catch (const Error& e) {
      fail(line_, std::string("column \"") + header_[time_col_] + "\": " + e.what());
    }
    row.values.resize(cols_.size());
    for (size_t i = 0; i < cols_.size(); ++i) {
      const std::string& cell = fields[cols_[i]];
      if (lower(cell) == "nan") {  // not measured in this row (series.csv writes nan)
        row.values[i] = std::nan("");
        continue;
      }
      if (!parse_number(cell, row.values[i]))
        fail(line_, "column \"" + header_[cols_[i]] + "\": " +
                        (cell.empty() ? std::string("empty value") : "\"" + cell + "\" is not a finite number"));
    }
    return true;
  }
  return false;
}

DetectCsvSummary detect_series_csv(SeriesCsvReader& reader, std::ostream& out, double risk) {
  const std::vector<std::string>& names = reader.columns();
  std::vector<UnivariateDetector> detectors(names.size(), UnivariateDetector(UnivariateConfig{risk}));
  DetectCsvSummary summary;
  summary.anomalies.assign(names.size(), 0);
  out << reader.timestamp_column();
  for (const std::string& n : names) out << ',' << n << "_score," << n << "_anomaly";
  out << '\n';
  SeriesRow row;
  char buf[64];
  while (reader.next(row)) {
    ++summary.rows;
    bool quote = row.timestamp.find_first_of(",\"") != std::string::npos;
    out << (quote ? "\"" : "") << row.timestamp << (quote ? "\"" : "");
    for (size_t i = 0; i < names.size(); ++i) {
      if (std::isnan(row.values[i])) {  // a gap: no observation, no label
        out << ",nan,0";
        continue;
      }
      UnivariateResult r = detectors[i].observe(row.values[i]);
      summary.anomalies[i] += r.anomaly;
      std::snprintf(buf, sizeof buf, ",%.4f,%d", r.ratio(), r.anomaly ? 1 : 0);
      out << buf;
    }
    out << '\n';
  }
  return summary;
}

}  // namespace stackwatch::localize
