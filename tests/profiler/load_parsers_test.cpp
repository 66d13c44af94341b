// Parsers of /proc/stat, /proc/loadavg and /proc/pressure/* on kernel-looking
// text, and ProcReader on a fake /proc with missing files.
#include <gtest/gtest.h>

#include "load_temp_dir.h"
#include "profiler/loadavg_parser.h"
#include "profiler/pressure_parser.h"
#include "profiler/proc_reader.h"
#include "profiler/proc_stat_parser.h"

namespace stackwatch::load {
namespace {

// A 4-CPU machine on a current kernel: 10 time columns (guest, guest_nice).
constexpr std::string_view kStat4CpusGuest =
    "cpu  7879 12 2862 92424 346 0 69 16 200 3\n"
    "cpu0 3580 2 1156 47047 14 0 13 6 100 1\n"
    "cpu1 4299 10 1706 45377 332 0 56 10 100 2\n"
    "cpu2 0 0 0 100 0 0 0 0 0 0\n"
    "cpu3 0 0 0 100 0 0 0 0 0 0\n"
    "intr 240387 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 1 14 0 0\n"
    "ctxt 492491\n"
    "btime 1763904000\n"
    "processes 6103\n"
    "procs_running 3\n"
    "procs_blocked 1\n"
    "softirq 180000 0 40000 10 2000 30000 0 500 60000 0 47490\n";

// A 2-CPU machine on an old kernel: 8 columns, no guest time at all.
constexpr std::string_view kStat2CpusNoGuest =
    "cpu  100 0 50 1000 5 1 2 3\n"
    "cpu0 60 0 20 500 5 1 1 2\n"
    "cpu1 40 0 30 500 0 0 1 1\n"
    "ctxt 1000\n"
    "processes 42\n"
    "procs_running 1\n"
    "procs_blocked 0\n";

TEST(ProcStatParser, FourCpusWithGuestColumns) {
  ProcStat s = parse_proc_stat(kStat4CpusGuest);
  ASSERT_TRUE(s.total);
  EXPECT_EQ(s.total->user, 7879u);
  EXPECT_EQ(s.total->nice, 12u);
  EXPECT_EQ(s.total->system, 2862u);
  EXPECT_EQ(s.total->idle, 92424u);
  EXPECT_EQ(s.total->iowait, 346u);
  EXPECT_EQ(s.total->irq, 0u);
  EXPECT_EQ(s.total->softirq, 69u);
  EXPECT_EQ(s.total->steal, 16u);
  EXPECT_EQ(s.total->guest, 200u);
  EXPECT_EQ(s.total->guest_nice, 3u);
  ASSERT_EQ(s.cpus.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(s.cpus[i].cpu, i);
  EXPECT_EQ(s.cpus[1].times.user, 4299u);
  EXPECT_EQ(s.cpus[1].times.guest_nice, 2u);
  EXPECT_EQ(s.cpus[3].times.idle, 100u);
  EXPECT_EQ(s.ctxt, 492491u);
  EXPECT_EQ(s.processes, 6103u);
  EXPECT_EQ(s.procs_running, 3u);
  EXPECT_EQ(s.procs_blocked, 1u);
}

TEST(ProcStatParser, TwoCpusWithoutGuestColumnsLeavesThemZero) {
  ProcStat s = parse_proc_stat(kStat2CpusNoGuest);
  ASSERT_TRUE(s.total);
  EXPECT_EQ(s.total->steal, 3u);
  EXPECT_EQ(s.total->guest, 0u);
  EXPECT_EQ(s.total->guest_nice, 0u);
  ASSERT_EQ(s.cpus.size(), 2u);
  EXPECT_EQ(s.cpus[0].times.user, 60u);
  EXPECT_EQ(s.cpus[1].times.system, 30u);
  EXPECT_EQ(s.ctxt, 1000u);
  EXPECT_EQ(s.processes, 42u);
}

TEST(ProcStatParser, KeepsKernelCpuNumbersWhenACpuIsOffline) {
  ProcStat s = parse_proc_stat("cpu  1 0 1 10\ncpu0 1 0 1 5\ncpu2 0 0 0 5\n");
  ASSERT_EQ(s.cpus.size(), 2u);
  EXPECT_EQ(s.cpus[0].cpu, 0);
  EXPECT_EQ(s.cpus[1].cpu, 2);
}

TEST(ProcStatParser, SkipsMalformedLinesAndKeepsTheRest) {
  ProcStat s = parse_proc_stat(
      "cpu  1 2 x 4\n"     // not a number: no total
      "cpu0 1 2\n"         // too few columns
      "cpuX 1 2 3 4\n"     // not a CPU number
      "cpu1 1 2 3 4 5 6 7 8 9 10 11\n"  // a future 11th column is ignored
      "ctxt\n"
      "processes 12\n");
  EXPECT_FALSE(s.total);
  ASSERT_EQ(s.cpus.size(), 1u);
  EXPECT_EQ(s.cpus[0].cpu, 1);
  EXPECT_EQ(s.cpus[0].times.guest_nice, 10u);
  EXPECT_FALSE(s.ctxt);
  EXPECT_EQ(s.processes, 12u);
  EXPECT_FALSE(s.procs_running);
}

TEST(ProcStatParser, EmptyTextGivesNothing) {
  ProcStat s = parse_proc_stat("");
  EXPECT_FALSE(s.total);
  EXPECT_TRUE(s.cpus.empty());
  EXPECT_FALSE(s.ctxt);
}

TEST(LoadavgParser, ParsesAllFields) {
  auto l = parse_loadavg("2.31 1.05 0.09 4/90 6101\n");
  ASSERT_TRUE(l);
  EXPECT_DOUBLE_EQ(l->load1, 2.31);
  EXPECT_DOUBLE_EQ(l->load5, 1.05);
  EXPECT_DOUBLE_EQ(l->load15, 0.09);
  EXPECT_EQ(l->runnable, 4u);
  EXPECT_EQ(l->entities, 90u);
  EXPECT_EQ(l->last_pid, 6101u);
}

TEST(LoadavgParser, RejectsMalformedText) {
  EXPECT_FALSE(parse_loadavg(""));
  EXPECT_FALSE(parse_loadavg("2.31 1.05 0.09 4 6101\n"));   // no slash
  EXPECT_FALSE(parse_loadavg("2.31 1.05 high 4/90 6101\n"));
  EXPECT_FALSE(parse_loadavg("2.31 1.05 0.09 4/90\n"));
}

TEST(PressureParser, IoWithSomeAndFull) {
  Pressure p = parse_pressure(
      "some avg10=0.43 avg60=0.89 avg300=0.41 total=3269065\n"
      "full avg10=0.40 avg60=0.87 avg300=0.39 total=3123747\n");
  ASSERT_TRUE(p.some);
  ASSERT_TRUE(p.full);
  EXPECT_DOUBLE_EQ(p.some->avg10, 0.43);
  EXPECT_DOUBLE_EQ(p.some->avg60, 0.89);
  EXPECT_DOUBLE_EQ(p.some->avg300, 0.41);
  EXPECT_EQ(p.some->total_us, 3269065u);
  EXPECT_DOUBLE_EQ(p.full->avg10, 0.40);
  EXPECT_EQ(p.full->total_us, 3123747u);
}

TEST(PressureParser, CpuBeforeLinux513HasNoFullLine) {
  Pressure p = parse_pressure("some avg10=1.97 avg60=3.74 avg300=1.35 total=7210533\n");
  ASSERT_TRUE(p.some);
  EXPECT_FALSE(p.full);
  EXPECT_EQ(p.some->total_us, 7210533u);
}

TEST(PressureParser, MalformedLineIsLeftOut) {
  Pressure p = parse_pressure(
      "some avg10=1.97 avg60=3.74 total=7210533\n"              // avg300 missing
      "full avg10=0.00 avg60=0.00 avg300=0.00 total=12 extra=1\n");  // unknown field: fine
  EXPECT_FALSE(p.some);
  ASSERT_TRUE(p.full);
  EXPECT_EQ(p.full->total_us, 12u);
  Pressure q = parse_pressure("some avg10=abc avg60=0 avg300=0 total=1\n");
  EXPECT_FALSE(q.some);
}

TEST(ProcReader, ReadsFilesBelowItsRootAndReportsMissingOnes) {
  testing::TempDir dir;
  dir.write("stat", kStat2CpusNoGuest);
  dir.write("pressure/io", "some avg10=0 avg60=0 avg300=0 total=0\n");
  ProcReader reader(dir.str());
  EXPECT_EQ(reader.read("stat"), std::string(kStat2CpusNoGuest));
  EXPECT_TRUE(reader.read("pressure/io"));
  EXPECT_FALSE(reader.read("pressure/cpu"));
  EXPECT_FALSE(reader.read("loadavg"));
  EXPECT_EQ(reader.path_of("stat"), dir.str() + "/stat");
}

TEST(ProcReader, ReadsTheRealProcStat) {
  ProcReader reader;
  auto text = reader.read("stat");
  ASSERT_TRUE(text);
  ProcStat s = parse_proc_stat(*text);
  ASSERT_TRUE(s.total);
  EXPECT_EQ(static_cast<long>(s.cpus.size()), sysconf(_SC_NPROCESSORS_ONLN));
  EXPECT_TRUE(s.ctxt);
  EXPECT_TRUE(s.procs_running);
  // At least this thread is running while it reads.
  EXPECT_GE(*s.procs_running, 1u);
}

}  // namespace
}  // namespace stackwatch::load
