// series.csv and processes.csv: exact text, columns that appear later,
// bounded rows, atomic rewrite, and a failed write that loses nothing.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cmath>

#include "load_temp_dir.h"
#include "profiler/load_series_writer.h"
#include "profiler/process_series_writer.h"
#include "recording/error.h"

namespace stackwatch::load {
namespace {

using testing::slurp;
using testing::TempDir;

constexpr int64_t kT0 = 1'704'164'645'678'000'000;  // 2024-01-02T03:04:05.678Z
constexpr int64_t kFiveSeconds = 5'000'000'000;

LoadSnapshot snapshot(uint64_t interval, std::vector<NamedValue> values) {
  LoadSnapshot s;
  s.interval = interval;
  s.start_unix_ns = kT0 + static_cast<int64_t>(interval) * kFiveSeconds;
  s.end_unix_ns = s.start_unix_ns + kFiveSeconds;
  s.values = std::move(values);
  return s;
}

size_t files_in(const std::filesystem::path& dir) {
  size_t n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) (void)e, ++n;
  return n;
}

TEST(LoadSeriesWriter, HeaderAndRowExactly) {
  TempDir out;
  LoadSeriesWriter writer((out.path() / "series.csv").string());
  writer.append(snapshot(0, {{"cpu_util", 87.5}, {"cpu0_util", 99}, {"cpu1_util", 76}, {"runq", 4},
                             {"load1", 2.31}, {"psi_io_some", 1.0 / 3}, {"ctxt_per_s", 3120}}));
  EXPECT_EQ(slurp(out.path() / "series.csv"),
            "interval,start,end,cpu_util,cpu0_util,cpu1_util,runq,load1,psi_io_some,ctxt_per_s\n"
            "0,2024-01-02T03:04:05.678Z,2024-01-02T03:04:10.678Z,87.5,99,76,4,2.31,0.333,3120\n");
  EXPECT_EQ(writer.rows(), 1u);
}

TEST(LoadSeriesWriter, RewritesAtomicallyEachIntervalAndLeavesNoTemporaries) {
  TempDir out;
  auto path = out.path() / "series.csv";
  LoadSeriesWriter writer(path.string());
  writer.append(snapshot(0, {{"cpu_util", 10}}));
  struct stat first{};
  ASSERT_EQ(::stat(path.c_str(), &first), 0);
  writer.append(snapshot(1, {{"cpu_util", 20}}));
  struct stat second{};
  ASSERT_EQ(::stat(path.c_str(), &second), 0);
  // A new file renamed over the old one, not the old one rewritten in place:
  // a reader holding the old file never sees it torn.
  EXPECT_NE(first.st_ino, second.st_ino);
  EXPECT_EQ(slurp(path),
            "interval,start,end,cpu_util\n"
            "0,2024-01-02T03:04:05.678Z,2024-01-02T03:04:10.678Z,10\n"
            "1,2024-01-02T03:04:10.678Z,2024-01-02T03:04:15.678Z,20\n");
  EXPECT_EQ(files_in(out.path()), 1u);
}

TEST(LoadSeriesWriter, LaterColumnsGoLastAndMissingCellsAreNan) {
  TempDir out;
  LoadSeriesWriter writer((out.path() / "series.csv").string());
  writer.append(snapshot(0, {{"cpu_util", 10}, {"cpu0_util", 10}}));
  // cpu1 came online; the caller adds a column of its own; cpu0 is gone.
  writer.append(snapshot(1, {{"cpu_util", 20}, {"cpu1_util", 30}}), {{"stacks_dropped", 2}});
  writer.append(snapshot(2, {{"cpu_util", std::nan("")}, {"cpu0_util", 5}}));
  EXPECT_EQ(writer.columns(), (std::vector<std::string>{"cpu_util", "cpu0_util", "cpu1_util", "stacks_dropped"}));
  EXPECT_EQ(writer.text(),
            "interval,start,end,cpu_util,cpu0_util,cpu1_util,stacks_dropped\n"
            "0,2024-01-02T03:04:05.678Z,2024-01-02T03:04:10.678Z,10,10,nan,nan\n"
            "1,2024-01-02T03:04:10.678Z,2024-01-02T03:04:15.678Z,20,nan,30,2\n"
            "2,2024-01-02T03:04:15.678Z,2024-01-02T03:04:20.678Z,nan,5,nan,nan\n");
  EXPECT_EQ(slurp(out.path() / "series.csv"), writer.text());
}

TEST(LoadSeriesWriter, KeepsOnlyTheNewestRows) {
  TempDir out;
  LoadSeriesWriter writer((out.path() / "series.csv").string(), 2);
  for (uint64_t i = 0; i < 5; ++i) writer.append(snapshot(i, {{"runq", static_cast<double>(i)}}));
  EXPECT_EQ(slurp(out.path() / "series.csv"),
            "interval,start,end,runq\n"
            "3,2024-01-02T03:04:20.678Z,2024-01-02T03:04:25.678Z,3\n"
            "4,2024-01-02T03:04:25.678Z,2024-01-02T03:04:30.678Z,4\n");
}

TEST(LoadSeriesWriter, FailedWriteThrowsAndTheRowIsInTheNextFile) {
  TempDir out;
  auto dir = out.path() / "later";
  LoadSeriesWriter writer((dir / "series.csv").string());
  EXPECT_THROW(writer.append(snapshot(0, {{"runq", 1}})), Error);
  std::filesystem::create_directories(dir);
  writer.append(snapshot(1, {{"runq", 2}}));
  EXPECT_EQ(slurp(dir / "series.csv"),
            "interval,start,end,runq\n"
            "0,2024-01-02T03:04:05.678Z,2024-01-02T03:04:10.678Z,1\n"
            "1,2024-01-02T03:04:10.678Z,2024-01-02T03:04:15.678Z,2\n");
}

TEST(LoadSeriesWriter, RejectsReservedAndDuplicateColumns) {
  TempDir out;
  LoadSeriesWriter writer((out.path() / "series.csv").string());
  EXPECT_THROW(writer.append(snapshot(0, {{"cpu_util", 1}}), {{"cpu_util", 2}}), Error);
  EXPECT_THROW(writer.append(snapshot(0, {}), {{"start", 2}}), Error);
  EXPECT_EQ(writer.rows(), 0u);
}

TEST(ProcessSeriesWriter, HeaderRowsAndQuotedComm) {
  TempDir out;
  auto path = out.path() / "processes.csv";
  ProcessSeriesWriter writer(path.string());
  writer.append({});  // an interval without processes still makes the file
  EXPECT_EQ(slurp(path),
            "interval,tgid,comm,oncpu_samples,oncpu_share,off_ms_running,off_ms_interruptible,"
            "off_ms_uninterruptible\n");
  writer.append({{1, 4242, "redis-server", 97, 0.485, 12.5, 4000, 0},
                 {1, 77, "a,b \"x\"", 3, 0.000015, 0, 0.25, 151.125}});
  EXPECT_EQ(slurp(path),
            "interval,tgid,comm,oncpu_samples,oncpu_share,off_ms_running,off_ms_interruptible,"
            "off_ms_uninterruptible\n"
            "1,4242,redis-server,97,0.485,12.5,4000,0\n"
            "1,77,\"a,b \"\"x\"\"\",3,0.000015,0,0.25,151.125\n");
  EXPECT_EQ(files_in(out.path()), 1u);
}

TEST(ProcessSeriesWriter, DropsTheOldestIntervalsWhole) {
  TempDir out;
  auto path = out.path() / "processes.csv";
  ProcessSeriesWriter writer(path.string(), 3);
  writer.append({{0, 1, "a", 1, 0.5, 0, 0, 0}, {0, 2, "b", 1, 0.5, 0, 0, 0}});
  writer.append({{1, 1, "a", 2, 1, 0, 0, 0}});
  writer.append({{2, 1, "a", 3, 0.75, 0, 0, 0}, {2, 2, "b", 1, 0.25, 0, 0, 0}});
  // 5 rows > 3: interval 0 (2 rows) goes, 3 rows are left.
  EXPECT_EQ(writer.rows(), 3u);
  EXPECT_EQ(slurp(path),
            "interval,tgid,comm,oncpu_samples,oncpu_share,off_ms_running,off_ms_interruptible,"
            "off_ms_uninterruptible\n"
            "1,1,a,2,1,0,0,0\n"
            "2,1,a,3,0.75,0,0,0\n"
            "2,2,b,1,0.25,0,0,0\n");
  // 7 rows: intervals 1 and 2 go; interval 3 alone is larger than the
  // bound and is kept whole rather than cut.
  writer.append({{3, 1, "a", 1, 0.25, 0, 0, 0}, {3, 2, "b", 1, 0.25, 0, 0, 0}, {3, 3, "c", 1, 0.25, 0, 0, 0},
                 {3, 4, "d", 1, 0.25, 0, 0, 0}});
  EXPECT_EQ(writer.rows(), 4u);
}

}  // namespace
}  // namespace stackwatch::load
