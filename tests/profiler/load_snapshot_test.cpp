// Load arithmetic on two readings with exact expected values, the names and
// order of the values, NaN/absent rules, the summary line, and CSV cells.
#include <gtest/gtest.h>

#include <cmath>

#include "profiler/csv_cells.h"
#include "profiler/load_snapshot.h"
#include "profiler/load_summary.h"

namespace stackwatch::load {
namespace {

CpuTimes times(uint64_t user, uint64_t nice, uint64_t system, uint64_t idle, uint64_t iowait, uint64_t irq,
               uint64_t softirq, uint64_t steal, uint64_t guest, uint64_t guest_nice) {
  return {user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice};
}

PressureLine psi(double avg10, uint64_t total_us) { return {avg10, 0, 0, total_us}; }

// Two readings 5 s apart of a 2-CPU machine running a VM (guest time).
// Over the interval, totals move by:
//   user +400 (of which guest +100), nice +10 (of which guest_nice +5),
//   system +200, idle +300, iowait +50, irq +10, softirq +10, steal +20
// busy = 400+10+200+10+10+20 = 650, total = 650+300+50 = 1000 -> 65%.
// Adding guest again would give 755/1105 = 68.3%: the double count.
std::pair<LoadReading, LoadReading> two_readings() {
  LoadReading a, b;
  a.monotonic_ns = 1'000'000'000;
  b.monotonic_ns = 6'000'000'000;
  a.unix_ns = 1'704'164'645'678'000'000;  // 2024-01-02T03:04:05.678Z
  b.unix_ns = 1'704'164'650'678'000'000;
  a.stat.total = times(1000, 50, 300, 8000, 100, 10, 20, 5, 200, 30);
  b.stat.total = times(1400, 60, 500, 8300, 150, 20, 30, 25, 300, 35);
  // cpu0: busy +300 of 500; cpu1: busy +350 of 500.
  a.stat.cpus = {{0, times(500, 20, 150, 4000, 50, 5, 10, 2, 100, 10)},
                 {1, times(500, 30, 150, 4000, 50, 5, 10, 3, 100, 20)}};
  b.stat.cpus = {{0, times(700, 25, 225, 4180, 70, 10, 15, 12, 150, 12)},
                 {1, times(700, 35, 275, 4120, 80, 10, 15, 13, 150, 23)}};
  a.stat.ctxt = 100'000;
  b.stat.ctxt = 115'600;  // 15600 in 5 s
  a.stat.processes = 6000;
  b.stat.processes = 6010;  // 10 in 5 s
  a.stat.procs_running = 1;
  b.stat.procs_running = 4;
  a.stat.procs_blocked = 0;
  b.stat.procs_blocked = 0;
  a.loadavg = LoadAvg{1.0, 1.0, 1.0, 1, 90, 6000};
  b.loadavg = LoadAvg{2.31, 1.05, 0.09, 4, 90, 6010};
  // 5 s = 5,000,000 us: cpu some +600,000 us = 12%, io some +250,000 = 5%,
  // io full +100,000 = 2%, memory nothing.
  a.psi_cpu = Pressure{psi(1, 7'000'000), psi(0, 0)};
  b.psi_cpu = Pressure{psi(11.5, 7'600'000), psi(0, 0)};
  a.psi_io = Pressure{psi(0, 3'000'000), psi(0, 2'000'000)};
  b.psi_io = Pressure{psi(4.25, 3'250'000), psi(1.5, 2'100'000)};
  a.psi_memory = Pressure{psi(0, 10), psi(0, 10)};
  b.psi_memory = Pressure{psi(0, 10), psi(0, 10)};
  return {a, b};
}

TEST(LoadSnapshot, ExactValuesInTheDocumentedOrder) {
  auto [a, b] = two_readings();
  LoadSnapshot s = compute_load_snapshot(a, b);
  std::vector<NamedValue> expected = {
      {"cpu_util", 65},          {"cpu_iowait", 5},         {"cpu0_util", 60},
      {"cpu1_util", 70},         {"runq", 4},               {"blocked", 0},
      {"load1", 2.31},           {"load5", 1.05},           {"load15", 0.09},
      {"psi_cpu_some", 12},      {"psi_io_some", 5},        {"psi_io_full", 2},
      {"psi_mem_some", 0},       {"psi_mem_full", 0},       {"psi_cpu_some_avg10", 11.5},
      {"psi_io_some_avg10", 4.25}, {"psi_io_full_avg10", 1.5}, {"psi_mem_some_avg10", 0},
      {"psi_mem_full_avg10", 0}, {"ctxt_per_s", 3120},      {"forks_per_s", 2},
  };
  ASSERT_EQ(s.values.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(s.values[i].name, expected[i].name) << "value " << i;
    EXPECT_DOUBLE_EQ(s.values[i].value, expected[i].value) << expected[i].name;
  }
  EXPECT_EQ(s.start_unix_ns, a.unix_ns);
  EXPECT_EQ(s.end_unix_ns, b.unix_ns);
  EXPECT_DOUBLE_EQ(s.value("cpu1_util"), 70);
  EXPECT_TRUE(std::isnan(s.value("psi_cpu_full")));  // constant 0 system-wide: left out
  EXPECT_FALSE(s.has("psi_cpu_full"));
}

TEST(LoadSnapshot, BusyAndTotalTicksLeaveGuestOut) {
  CpuTimes d = times(400, 10, 200, 300, 50, 10, 10, 20, 100, 5);
  EXPECT_EQ(busy_ticks(d), 650u);
  EXPECT_EQ(total_ticks(d), 1000u);
}

TEST(LoadSnapshot, CounterGoingBackwardsCountsAsNoTime) {
  // Per-CPU iowait may decrease between readings (proc(5)).
  LoadReading a, b;
  a.monotonic_ns = 0;
  b.monotonic_ns = 1'000'000'000;
  a.stat.total = times(100, 0, 0, 100, 50, 0, 0, 0, 0, 0);
  b.stat.total = times(150, 0, 0, 150, 40, 0, 0, 0, 0, 0);
  LoadSnapshot s = compute_load_snapshot(a, b);
  EXPECT_DOUBLE_EQ(s.value("cpu_util"), 50);
  EXPECT_DOUBLE_EQ(s.value("cpu_iowait"), 0);
}

TEST(LoadSnapshot, MissingSourcesGiveAbsentOrNaNValues) {
  LoadReading a, b;
  a.monotonic_ns = 0;
  b.monotonic_ns = 1'000'000'000;
  a.stat.total = times(10, 0, 0, 10, 0, 0, 0, 0, 0, 0);
  b.stat.total = a.stat.total;  // no ticks at all: utilization is unknown
  a.stat.cpus = {{0, times(1, 0, 0, 1, 0, 0, 0, 0, 0, 0)}, {1, times(1, 0, 0, 1, 0, 0, 0, 0, 0, 0)}};
  b.stat.cpus = {{0, times(2, 0, 0, 2, 0, 0, 0, 0, 0, 0)}};  // cpu1 went offline
  a.psi_io = Pressure{psi(0, 0), std::nullopt};  // io without "full"; io vanished later
  LoadSnapshot s = compute_load_snapshot(a, b);
  std::vector<std::string> names;
  for (const auto& v : s.values) names.push_back(v.name);
  EXPECT_EQ(names, (std::vector<std::string>{"cpu_util", "cpu_iowait", "cpu0_util", "cpu1_util", "psi_io_some",
                                             "psi_io_some_avg10"}));
  EXPECT_TRUE(std::isnan(s.value("cpu_util")));
  EXPECT_DOUBLE_EQ(s.value("cpu0_util"), 50);
  EXPECT_TRUE(std::isnan(s.value("cpu1_util")));
  EXPECT_TRUE(std::isnan(s.value("psi_io_some")));
  EXPECT_FALSE(s.has("load1"));
  EXPECT_FALSE(s.has("ctxt_per_s"));
}

TEST(LoadSnapshot, PsiShareIsCappedAtTheWholeInterval) {
  LoadReading a, b;
  a.monotonic_ns = 0;
  b.monotonic_ns = 1'000'000'000;
  a.psi_io = Pressure{psi(0, 0), psi(0, 0)};
  b.psi_io = Pressure{psi(100, 1'000'040), psi(100, 1'000'000)};  // read 40 us later than our clock
  LoadSnapshot s = compute_load_snapshot(a, b);
  EXPECT_DOUBLE_EQ(s.value("psi_io_some"), 100);
  EXPECT_DOUBLE_EQ(s.value("psi_io_full"), 100);
}

TEST(LoadSnapshot, ZeroLengthIntervalGivesNaNRates) {
  auto [a, b] = two_readings();
  b.monotonic_ns = a.monotonic_ns;
  LoadSnapshot s = compute_load_snapshot(a, b);
  EXPECT_TRUE(std::isnan(s.value("ctxt_per_s")));
  EXPECT_TRUE(std::isnan(s.value("psi_io_some")));
  EXPECT_DOUBLE_EQ(s.value("cpu_util"), 65);  // ticks do not need the clock
}

TEST(LoadValueNames, KnowsTheDocumentedNames) {
  for (const char* n : {"cpu_util", "cpu_iowait", "cpu0_util", "cpu127_util", "runq", "blocked", "load1", "load5",
                        "load15", "psi_cpu_some", "psi_io_full", "psi_mem_some_avg10", "ctxt_per_s", "forks_per_s"})
    EXPECT_TRUE(is_load_value_name(n)) << n;
  for (const char* n : {"", "cpu", "cpu_util2", "cpuX_util", "cpu_util_", "psi_cpu_full", "load", "interval"})
    EXPECT_FALSE(is_load_value_name(n)) << n;
  EXPECT_TRUE(is_percent_value_name("cpu3_util"));
  EXPECT_TRUE(is_percent_value_name("psi_io_some"));
  EXPECT_FALSE(is_percent_value_name("load1"));
  EXPECT_FALSE(is_percent_value_name("ctxt_per_s"));
}

TEST(LoadSummary, OneLineWithTheDocumentedItems) {
  auto [a, b] = two_readings();
  EXPECT_EQ(format_load_summary(compute_load_snapshot(a, b)),
            "load: cpu 65% (cpu0 60% cpu1 70%) runq 4 load1 2.31 psi cpu 12% io 5% mem 0% cs/s 3120");
}

TEST(LoadSummary, SmallSharesKeepADecimalAndBlockedTasksShow) {
  LoadSnapshot s;
  s.values = {{"cpu_util", 87.4}, {"cpu0_util", 99.2}, {"cpu1_util", 75.5}, {"runq", 4},
              {"blocked", 2},     {"load1", 2.314},   {"psi_cpu_some", 12.04}, {"psi_io_some", 0.3},
              {"psi_mem_some", 0}, {"ctxt_per_s", 3120.4}};
  EXPECT_EQ(format_load_summary(s),
            "load: cpu 87% (cpu0 99% cpu1 76%) runq 4 blocked 2 load1 2.31 psi cpu 12% io 0.3% mem 0% cs/s 3120");
}

TEST(LoadSummary, LeavesOutWhatIsMissing) {
  LoadSnapshot s;
  s.values = {{"cpu_util", std::nan("")}, {"cpu0_util", 10}, {"runq", 1}};
  EXPECT_EQ(format_load_summary(s), "load: (cpu0 10%) runq 1");
}

TEST(LoadSummary, ManyCpusListOnlyTheBusiest) {
  LoadSnapshot s;
  s.values.push_back({"cpu_util", 20});
  for (int i = 0; i < 32; ++i) s.values.push_back({"cpu" + std::to_string(i) + "_util", i == 7 ? 100.0 : i});
  EXPECT_EQ(format_load_summary(s),
            "load: cpu 20% (busiest cpu7 100% cpu31 31% cpu30 30% cpu29 29% cpu28 28% cpu27 27% cpu26 26% cpu25 25%)");
}

TEST(CsvCells, Numbers) {
  EXPECT_EQ(format_csv_number(87.5), "87.5");
  EXPECT_EQ(format_csv_number(3120), "3120");
  EXPECT_EQ(format_csv_number(1.0 / 3), "0.333");
  EXPECT_EQ(format_csv_number(0.0004), "0");
  EXPECT_EQ(format_csv_number(-0.0001), "0");
  EXPECT_EQ(format_csv_number(-2.5), "-2.5");
  EXPECT_EQ(format_csv_number(100), "100");
  EXPECT_EQ(format_csv_number(std::nan("")), "nan");
  EXPECT_EQ(format_csv_number(0.0004, 6), "0.0004");
}

TEST(CsvCells, Iso8601UtcWithMilliseconds) {
  EXPECT_EQ(format_iso8601_utc(1'704'164'645'678'000'000), "2024-01-02T03:04:05.678Z");
  EXPECT_EQ(format_iso8601_utc(1'704'164'645'678'999'999), "2024-01-02T03:04:05.678Z");  // truncated
  EXPECT_EQ(format_iso8601_utc(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_iso8601_utc(-1), "1969-12-31T23:59:59.999Z");
}

TEST(CsvCells, QuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(csv_quote("redis-server"), "redis-server");
  EXPECT_EQ(csv_quote("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_quote("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_quote("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_quote(" pad"), "\" pad\"");
  EXPECT_EQ(csv_quote(""), "");
}

}  // namespace
}  // namespace stackwatch::load
