// LoadMonitor (see load_monitor.h).
#include "profiler/load_monitor.h"

#include <time.h>

#include "recording/error.h"

namespace stackwatch::load {
namespace {

int64_t now_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::optional<Pressure> read_pressure(const ProcReader& reader, std::string_view name) {
  auto text = reader.read(name);
  if (!text) return std::nullopt;
  Pressure p = parse_pressure(*text);
  if (!p.some && !p.full) return std::nullopt;
  return p;
}

}  // namespace

ClockReading read_clocks() { return {now_ns(CLOCK_MONOTONIC), now_ns(CLOCK_REALTIME)}; }

LoadMonitor::LoadMonitor(ProcReader reader, Clock clock) : reader_(std::move(reader)), clock_(std::move(clock)) {
  if (!reader_.read("stat"))
    throw Error("cannot read " + reader_.path_of("stat") + ": the load monitor needs /proc mounted");
  previous_ = read();
}

LoadReading LoadMonitor::read() {
  LoadReading r;
  // Clock first, then files: the files describe "now" to within the few
  // microseconds it takes to read them.
  ClockReading clocks = clock_();
  r.monotonic_ns = clocks.monotonic_ns;
  r.unix_ns = clocks.unix_ns;
  if (auto text = reader_.read("stat")) {
    r.stat = parse_proc_stat(*text);
  }
  if (!r.stat.total) ++read_failures_;
  if (auto text = reader_.read("loadavg")) r.loadavg = parse_loadavg(*text);
  r.psi_cpu = read_pressure(reader_, "pressure/cpu");
  r.psi_io = read_pressure(reader_, "pressure/io");
  r.psi_memory = read_pressure(reader_, "pressure/memory");
  return r;
}

LoadSnapshot LoadMonitor::sample() {
  LoadReading now = read();
  LoadSnapshot snap = compute_load_snapshot(previous_, now);
  snap.interval = next_interval_++;
  previous_ = std::move(now);
  return snap;
}

void LoadMonitor::restart() { previous_ = read(); }

}  // namespace stackwatch::load
