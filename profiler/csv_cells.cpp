// CSV cell formatting (see csv_cells.h).
#include "profiler/csv_cells.h"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace stackwatch::load {

std::string format_csv_number(double value, int decimals) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  std::string text = buf;
  size_t dot = text.find('.');
  if (dot != std::string::npos) {
    size_t last = text.find_last_not_of('0');
    text.erase(last == dot ? dot : last + 1);
  }
  if (text == "-0") text = "0";
  return text;
}

std::string format_iso8601_utc(int64_t unix_ns) {
  // Floor division, so that instants before 1970 still format correctly.
  int64_t ms = unix_ns >= 0 ? unix_ns / 1'000'000 : -((-unix_ns + 999'999) / 1'000'000);
  time_t seconds = static_cast<time_t>(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
  int millis = static_cast<int>(ms - static_cast<int64_t>(seconds) * 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

std::string csv_quote(std::string_view text) {
  bool needs = text.find_first_of(",\"\r\n") != std::string_view::npos ||
               (!text.empty() && (text.front() == ' ' || text.back() == ' '));
  if (!needs) return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace stackwatch::load
