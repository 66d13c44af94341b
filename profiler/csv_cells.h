// The cells of stackwatch's CSV files (series.csv, processes.csv): numbers,
// timestamps and text, formatted the same way everywhere so that a reader
// (stackwatch detect, pandas, a spreadsheet) parses every file alike.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace stackwatch::load {

// At most `decimals` decimals, trailing zeros dropped: "87.5", "3120", "0.333".
// Not-a-number (a value that could not be measured) is "nan", which strtod,
// from_chars and pandas all read back as NaN.
std::string format_csv_number(double value, int decimals = 3);

// ISO 8601 UTC with milliseconds: "2026-11-23T13:30:56.123Z".
std::string format_iso8601_utc(int64_t unix_ns);

// RFC 4180: text with a comma, a quote, a line break or edge spaces is
// quoted, inner quotes doubled. A comm may contain any of them.
std::string csv_quote(std::string_view text);

}  // namespace stackwatch::load
