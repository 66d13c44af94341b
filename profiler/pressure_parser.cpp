// PSI parser (see pressure_parser.h).
#include "profiler/pressure_parser.h"

#include "profiler/text_fields.h"

namespace stackwatch::load {
namespace {

std::optional<PressureLine> parse_line(std::string_view rest) {
  PressureLine line;
  bool seen[4] = {false, false, false, false};
  for (std::string_view word : split_words(rest)) {
    size_t eq = word.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view name = word.substr(0, eq);
    std::string_view value = word.substr(eq + 1);
    if (name == "total") {
      auto total = parse_u64(value);
      if (!total) return std::nullopt;
      line.total_us = *total;
      seen[3] = true;
      continue;
    }
    double* target = name == "avg10"    ? &line.avg10
                     : name == "avg60"  ? &line.avg60
                     : name == "avg300" ? &line.avg300
                                        : nullptr;
    if (target == nullptr) continue;  // a field a future kernel adds
    auto parsed = parse_double(value);
    if (!parsed) return std::nullopt;
    *target = *parsed;
    seen[target == &line.avg10 ? 0 : target == &line.avg60 ? 1 : 2] = true;
  }
  if (!(seen[0] && seen[1] && seen[2] && seen[3])) return std::nullopt;
  return line;
}

}  // namespace

Pressure parse_pressure(std::string_view text) {
  Pressure pressure;
  for (std::string_view line : split_lines(text)) {
    auto [key, rest] = split_key(line);
    if (key == "some") pressure.some = parse_line(rest);
    else if (key == "full") pressure.full = parse_line(rest);
  }
  return pressure;
}

}  // namespace stackwatch::load
