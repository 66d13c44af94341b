// Load summary line (see load_summary.h).
#include "profiler/load_summary.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace stackwatch::load {
namespace {

// Every CPU fits on the line up to here; beyond, the busiest are what a
// person scans for.
constexpr size_t kMaxCpusListed = 16;
constexpr size_t kBusiestListed = 8;

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// "12%", "0.3%", "0%": one decimal only where it carries information.
std::string small_percent(double v) {
  if (v >= 9.95 || v == 0) return fixed(v, 0) + "%";
  std::string s = fixed(v, 1);
  if (s.ends_with(".0")) s.resize(s.size() - 2);
  return s + "%";
}

bool is_cpu_column(const std::string& name) {
  if (!name.starts_with("cpu") || !name.ends_with("_util") || name.size() <= 8) return false;
  return std::all_of(name.begin() + 3, name.end() - 5, [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string format_load_summary(const LoadSnapshot& snap) {
  std::string line = "load:";
  auto item = [&](const char* label, double v, const std::string& text) {
    if (std::isnan(v)) return;
    line += ' ';
    line += label;
    line += ' ';
    line += text;
  };
  double cpu = snap.value("cpu_util");
  item("cpu", cpu, fixed(cpu, 0) + "%");

  std::vector<std::pair<std::string, double>> cpus;
  for (const auto& v : snap.values)
    if (is_cpu_column(v.name) && !std::isnan(v.value)) cpus.emplace_back(v.name.substr(0, v.name.size() - 5), v.value);
  if (!cpus.empty()) {
    std::string list = "(";
    if (cpus.size() > kMaxCpusListed) {
      std::stable_sort(cpus.begin(), cpus.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
      cpus.resize(kBusiestListed);
      list += "busiest ";
    }
    for (size_t i = 0; i < cpus.size(); ++i) {
      if (i > 0) list += ' ';
      list += cpus[i].first + ' ' + fixed(cpus[i].second, 0) + '%';
    }
    line += ' ' + list + ')';
  }

  double runq = snap.value("runq");
  item("runq", runq, fixed(runq, 0));
  double blocked = snap.value("blocked");
  if (blocked > 0) item("blocked", blocked, fixed(blocked, 0));
  double load1 = snap.value("load1");
  item("load1", load1, fixed(load1, 2));

  double psi_cpu = snap.value("psi_cpu_some");
  double psi_io = snap.value("psi_io_some");
  double psi_mem = snap.value("psi_mem_some");
  if (!std::isnan(psi_cpu) || !std::isnan(psi_io) || !std::isnan(psi_mem)) {
    line += " psi";
    item("cpu", psi_cpu, small_percent(psi_cpu));
    item("io", psi_io, small_percent(psi_io));
    item("mem", psi_mem, small_percent(psi_mem));
  }
  double cs = snap.value("ctxt_per_s");
  item("cs/s", cs, fixed(cs, 0));
  return line;
}

}  // namespace stackwatch::load
