// --load-threshold parsing and decisions (see load_threshold.h).
#include "profiler/load_threshold.h"

#include <charconv>
#include <cmath>

#include "profiler/csv_cells.h"
#include "recording/error.h"

namespace stackwatch::load {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

const char* spelling(LoadThreshold::Op op) {
  switch (op) {
    case LoadThreshold::Op::kGreater: return ">";
    case LoadThreshold::Op::kGreaterEqual: return ">=";
    case LoadThreshold::Op::kLess: return "<";
    case LoadThreshold::Op::kLessEqual: return "<=";
  }
  return "?";
}

bool holds(const LoadThreshold::Condition& c, double v) {
  if (std::isnan(v)) return false;
  switch (c.op) {
    case LoadThreshold::Op::kGreater: return v > c.limit;
    case LoadThreshold::Op::kGreaterEqual: return v >= c.limit;
    case LoadThreshold::Op::kLess: return v < c.limit;
    case LoadThreshold::Op::kLessEqual: return v <= c.limit;
  }
  return false;
}

double parse_limit(std::string_view text, std::string_view condition) {
  text = trim(text);
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v))
    throw Error("--load-threshold: '" + std::string(condition) + "' needs a number after the comparison, e.g. cpu_util>80");
  return v;
}

LoadThreshold::Condition parse_condition(std::string_view text) {
  text = trim(text);
  if (text.empty()) throw Error("--load-threshold: empty condition; use e.g. 80 or cpu_util>80,load1>4");
  LoadThreshold::Condition c;
  size_t op_at = text.find_first_of("<>");
  if (op_at == std::string_view::npos) {
    c.name = "cpu_util";
    c.limit = parse_limit(text, text);
  } else {
    c.name = std::string(trim(text.substr(0, op_at)));
    bool equal = op_at + 1 < text.size() && text[op_at + 1] == '=';
    c.op = text[op_at] == '>' ? (equal ? LoadThreshold::Op::kGreaterEqual : LoadThreshold::Op::kGreater)
                              : (equal ? LoadThreshold::Op::kLessEqual : LoadThreshold::Op::kLess);
    if (!is_load_value_name(c.name))
      throw Error("--load-threshold: unknown load value '" + c.name +
                  "'; use one of cpu_util, cpuN_util, cpu_iowait, runq, blocked, load1, load5, load15, "
                  "psi_cpu_some, psi_io_some, psi_io_full, psi_mem_some, psi_mem_full (+_avg10), "
                  "ctxt_per_s, forks_per_s");
    c.limit = parse_limit(text.substr(op_at + (equal ? 2 : 1)), text);
  }
  if (is_percent_value_name(c.name)) {
    bool never = (c.op == LoadThreshold::Op::kGreater && c.limit >= 100) ||
                 (c.op == LoadThreshold::Op::kGreaterEqual && c.limit > 100) ||
                 (c.op == LoadThreshold::Op::kLess && c.limit <= 0) ||
                 (c.op == LoadThreshold::Op::kLessEqual && c.limit < 0);
    bool always = (c.op == LoadThreshold::Op::kGreater && c.limit < 0) ||
                  (c.op == LoadThreshold::Op::kLessEqual && c.limit >= 100);
    if (never || always)
      throw Error("--load-threshold: " + c.name + " is a percentage (0..100), so '" + std::string(text) +
                  "' would " + (never ? "never" : "always") + " hold");
  }
  return c;
}

}  // namespace

LoadThreshold LoadThreshold::parse(std::string_view spec) {
  LoadThreshold threshold;
  for (;;) {
    size_t comma = spec.find(',');
    threshold.conditions_.push_back(parse_condition(spec.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    spec.remove_prefix(comma + 1);
  }
  return threshold;
}

bool LoadThreshold::exceeded(const LoadSnapshot& snapshot) const {
  for (const auto& c : conditions_)
    if (holds(c, snapshot.value(c.name))) return true;
  return false;
}

std::string LoadThreshold::explain(const LoadSnapshot& snapshot) const {
  std::string out;
  for (const auto& c : conditions_) {
    double v = snapshot.value(c.name);
    if (!holds(c, v)) continue;
    if (!out.empty()) out += ", ";
    out += c.name + ' ' + format_csv_number(v) + ' ' + spelling(c.op) + ' ' + format_csv_number(c.limit);
  }
  return out;
}

std::string LoadThreshold::to_string() const {
  std::string out;
  for (const auto& c : conditions_) {
    if (!out.empty()) out += ',';
    out += c.name + spelling(c.op) + format_csv_number(c.limit);
  }
  return out;
}

}  // namespace stackwatch::load
