// Load arithmetic over two readings (see load_snapshot.h).
#include "profiler/load_snapshot.h"

#include <algorithm>
#include <limits>
#include <map>

namespace stackwatch::load {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Counters are cumulative, but per-CPU iowait is documented to go backwards
// now and then (proc(5)), and a CPU that went offline and back may restart:
// a decrease is counted as no time rather than as 2^64 ticks.
uint64_t delta(uint64_t before, uint64_t after) { return after > before ? after - before : 0; }

CpuTimes delta(const CpuTimes& a, const CpuTimes& b) {
  return {delta(a.user, b.user),     delta(a.nice, b.nice),       delta(a.system, b.system),
          delta(a.idle, b.idle),     delta(a.iowait, b.iowait),   delta(a.irq, b.irq),
          delta(a.softirq, b.softirq), delta(a.steal, b.steal),   delta(a.guest, b.guest),
          delta(a.guest_nice, b.guest_nice)};
}

double percent(uint64_t part, uint64_t whole) {
  return whole == 0 ? kNaN : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

double util(const std::optional<CpuTimes>& a, const std::optional<CpuTimes>& b) {
  if (!a || !b) return kNaN;
  CpuTimes d = delta(*a, *b);
  return percent(busy_ticks(d), total_ticks(d));
}

double rate(const std::optional<uint64_t>& a, const std::optional<uint64_t>& b, double seconds) {
  if (!a || !b || !(seconds > 0)) return kNaN;
  return static_cast<double>(delta(*a, *b)) / seconds;
}

double instant(const std::optional<uint64_t>& v) { return v ? static_cast<double>(*v) : kNaN; }

const std::optional<PressureLine>& line_of(const Pressure& p, bool full) { return full ? p.full : p.some; }

}  // namespace

uint64_t busy_ticks(const CpuTimes& t) { return t.user + t.nice + t.system + t.irq + t.softirq + t.steal; }

uint64_t total_ticks(const CpuTimes& t) { return busy_ticks(t) + t.idle + t.iowait; }

bool is_load_value_name(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "cpu_util",          "cpu_iowait",        "runq",
      "blocked",           "load1",             "load5",
      "load15",            "psi_cpu_some",      "psi_io_some",
      "psi_io_full",       "psi_mem_some",      "psi_mem_full",
      "psi_cpu_some_avg10", "psi_io_some_avg10", "psi_io_full_avg10",
      "psi_mem_some_avg10", "psi_mem_full_avg10", "ctxt_per_s",
      "forks_per_s"};
  if (std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames)) return true;
  // cpuN_util
  if (!name.starts_with("cpu") || !name.ends_with("_util") || name.size() <= 8) return false;
  std::string_view digits = name.substr(3, name.size() - 8);
  return std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_percent_value_name(std::string_view name) {
  return is_load_value_name(name) && (name.starts_with("cpu") || name.starts_with("psi_"));
}

double LoadSnapshot::value(std::string_view name) const {
  for (const auto& v : values)
    if (v.name == name) return v.value;
  return kNaN;
}

bool LoadSnapshot::has(std::string_view name) const {
  return std::any_of(values.begin(), values.end(), [&](const NamedValue& v) { return v.name == name; });
}

LoadSnapshot compute_load_snapshot(const LoadReading& start, const LoadReading& end) {
  LoadSnapshot snap;
  snap.start_unix_ns = start.unix_ns;
  snap.end_unix_ns = end.unix_ns;
  auto& out = snap.values;
  const double seconds = static_cast<double>(end.monotonic_ns - start.monotonic_ns) / 1e9;

  if (start.stat.total || end.stat.total) {
    out.push_back({"cpu_util", util(start.stat.total, end.stat.total)});
    double iowait = kNaN;
    if (start.stat.total && end.stat.total) {
      CpuTimes d = delta(*start.stat.total, *end.stat.total);
      iowait = percent(d.iowait, total_ticks(d));
    }
    out.push_back({"cpu_iowait", iowait});
  }

  // Every CPU seen in either reading, by number; hot-plugged ones get NaN.
  std::map<int, std::pair<std::optional<CpuTimes>, std::optional<CpuTimes>>> cpus;
  for (const auto& c : start.stat.cpus) cpus[c.cpu].first = c.times;
  for (const auto& c : end.stat.cpus) cpus[c.cpu].second = c.times;
  for (const auto& [cpu, times] : cpus)
    out.push_back({"cpu" + std::to_string(cpu) + "_util", util(times.first, times.second)});

  if (start.stat.procs_running || end.stat.procs_running)
    out.push_back({"runq", instant(end.stat.procs_running)});
  if (start.stat.procs_blocked || end.stat.procs_blocked)
    out.push_back({"blocked", instant(end.stat.procs_blocked)});

  if (start.loadavg || end.loadavg) {
    out.push_back({"load1", end.loadavg ? end.loadavg->load1 : kNaN});
    out.push_back({"load5", end.loadavg ? end.loadavg->load5 : kNaN});
    out.push_back({"load15", end.loadavg ? end.loadavg->load15 : kNaN});
  }

  struct PsiColumn {
    const char* name;
    const std::optional<Pressure> LoadReading::*resource;
    bool full;
  };
  static constexpr PsiColumn kPsi[] = {
      {"psi_cpu_some", &LoadReading::psi_cpu, false},    {"psi_io_some", &LoadReading::psi_io, false},
      {"psi_io_full", &LoadReading::psi_io, true},       {"psi_mem_some", &LoadReading::psi_memory, false},
      {"psi_mem_full", &LoadReading::psi_memory, true},
  };
  auto psi_line = [](const LoadReading& r, const PsiColumn& c) -> std::optional<PressureLine> {
    const auto& p = r.*c.resource;
    return p ? line_of(*p, c.full) : std::nullopt;
  };
  std::vector<const PsiColumn*> present;
  for (const auto& c : kPsi) {
    auto a = psi_line(start, c);
    auto b = psi_line(end, c);
    if (!a && !b) continue;
    present.push_back(&c);
    double share = kNaN;
    if (a && b && seconds > 0) {
      // PSI totals and our clock are read a few microseconds apart, so the
      // ratio can exceed 100 by a hair: a share is at most the whole.
      share = std::min(100.0, 100.0 * static_cast<double>(delta(a->total_us, b->total_us)) / (seconds * 1e6));
    }
    out.push_back({c.name, share});
  }
  for (const PsiColumn* c : present) {
    auto b = psi_line(end, *c);
    out.push_back({std::string(c->name) + "_avg10", b ? b->avg10 : kNaN});
  }

  if (start.stat.ctxt || end.stat.ctxt) out.push_back({"ctxt_per_s", rate(start.stat.ctxt, end.stat.ctxt, seconds)});
  if (start.stat.processes || end.stat.processes)
    out.push_back({"forks_per_s", rate(start.stat.processes, end.stat.processes, seconds)});
  return snap;
}

}  // namespace stackwatch::load
