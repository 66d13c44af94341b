// The offline pipeline on a recording directory written with the real
// writers (intervals.jsonl, stacks.json, anomalies.jsonl, probes.json).
#include "localize/localize_pipeline.h"

#include <CLI/CLI.hpp>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "localize/interval_log.h"
#include "profiler/commands.h"
#include "recording/error.h"
#include "recording/stacks_json.h"
#include "synthetic_stacks.h"

namespace stackwatch::localize {
namespace {

namespace fs = std::filesystem;
using namespace testing;

class RecordingDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("localizer_test_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // 8 intervals of 1 s: fdatasync under handle_request blocks 10 ms/s in
  // 0-5 and 800 ms/s in 6-7; parse's CPU and the idle loop are steady.
  void write_recording() {
    IntervalLogWriter log((dir_ / "intervals.jsonl").string());
    std::vector<StackSample> all;
    for (uint64_t i = 0; i < 8; ++i) {
      Interval in;
      in.index = i;
      in.start_unix_ns = 1'700'000'000'000'000'000 + static_cast<int64_t>(i) * 1'000'000'000;
      in.end_unix_ns = in.start_unix_ns + 1'000'000'000;
      uint64_t fsync_ns = i >= 6 ? 800'000'000 : 10'000'000;
      in.stacks.push_back(off_cpu(with_kernel({user("main"), user("loop"), user("handle_request"), libc("fdatasync")},
                                              fdatasync_kernel_path()),
                                  fsync_ns, OffCpuState::kUninterruptible, 5));
      in.stacks.push_back(on_cpu(path({user("main"), user("loop"), user("handle_request"), user("parse")}), 10));
      in.stacks.push_back(off_cpu(with_kernel({user("main"), user("loop"), libc("epoll_wait")},
                                              {kern("do_syscall_64"), kern("ep_poll"), kern("schedule")}),
                                  900'000'000 - fsync_ns, OffCpuState::kInterruptible, 50));
      log.append(summarize_interval(in, {}));
      all.insert(all.end(), in.stacks.begin(), in.stacks.end());
    }
    StacksFileMeta meta;
    meta.sample_hz = 49;
    std::ofstream(dir_ / "stacks.json") << stacks_to_json(all, meta).dump();
  }

  fs::path dir_;
};

TEST_F(RecordingDir, RanksAndHintsTheExplicitAnomaly) {
  write_recording();
  LocalizeOptions o;
  o.anomaly = parse_interval_ranges("6-7");
  LocalizeResult r = localize_recording(dir_.string(), o);
  ASSERT_EQ(r.processes.size(), 1u);
  const ProcessLocalization& p = r.processes[0];
  EXPECT_EQ(p.process, "app");
  EXPECT_EQ(p.anomaly_intervals, (std::vector<uint64_t>{6, 7}));
  EXPECT_EQ(p.baseline_intervals, (std::vector<uint64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_DOUBLE_EQ(p.anomaly_seconds, 2);
  ASSERT_FALSE(p.suspects.empty());
  EXPECT_EQ(p.suspects[0].function.name, "handle_request");
  EXPECT_NEAR(p.suspects[0].anomaly_off[static_cast<size_t>(OffCpuState::kUninterruptible)], 0.8, 1e-6);
  ASSERT_EQ(p.hints.size(), p.suspects.size());
  EXPECT_EQ(p.hints[0].category, CauseCategory::kDiskIo);
  EXPECT_NE(p.hints[0].sentence.find("blocked (uninterruptible) in fdatasync -> ext4_sync_file -> jbd2_log_wait_commit"),
            std::string::npos)
      << p.hints[0].sentence;

  auto written = write_hints(dir_.string(), r);
  ASSERT_EQ(written.size(), 2u);
  std::ifstream json_in(dir_ / "hints.json");
  nlohmann::json doc = nlohmann::json::parse(json_in);
  EXPECT_EQ(doc["processes"][0]["hints"][0]["category"], "disk_io");
  EXPECT_EQ(doc["processes"][0]["hints"][0]["function"], "handle_request");
  std::ifstream text_in(dir_ / "hints.txt");
  std::string text((std::istreambuf_iterator<char>(text_in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("app: anomaly in intervals 6-7 (2.0 s), baseline 0-5 (6.0 s)"), std::string::npos) << text;
  EXPECT_NE(text.find("1. handle_request (app) explains"), std::string::npos) << text;
}

TEST_F(RecordingDir, UsesTheAnomaliesFileAndTheProbeResults) {
  write_recording();
  {
    std::ofstream a(dir_ / "anomalies.jsonl");
    for (int i : {6, 7})
      a << nlohmann::json{{"interval", i},
                          {"kind", "stack_spike"},
                          {"top", {{{"series", "stack off:app;main;loop;handle_request;fdatasync"}, {"contribution", 1}}}}}
                  .dump()
        << "\n";
    FunctionLatency f;
    f.function = "handle_request";
    f.calls = 12;
    f.p50_ns = 150'000'000;
    f.p99_ns = 240'000'000;
    f.max_ns = 250'000'000;
    f.on_cpu_share = 0.01;
    f.blocked_share = 0.98;
    f.runqueue_share = 0.01;
    std::ofstream(dir_ / "probes.json") << nlohmann::json{{"functions", {f.to_json()}}}.dump();
  }
  LocalizeResult r = localize_recording(dir_.string());
  ASSERT_EQ(r.processes.size(), 1u);
  EXPECT_EQ(r.processes[0].anomaly_intervals, (std::vector<uint64_t>{6, 7}));
  ASSERT_FALSE(r.processes[0].hints.empty());
  const Hint& h = r.processes[0].hints[0];
  EXPECT_EQ(h.category, CauseCategory::kDiskIo);
  EXPECT_EQ(h.sentence.rfind("handle_request: p99 240 ms (p50 150 ms, max 250 ms, 12 calls), 98% of it blocked", 0), 0u)
      << h.sentence;
}

// `stackwatch localize DIR` through its CLI registration.
void run_localize_command(std::vector<std::string> args) {
  CLI::App app;
  cli::register_localize_command(app);
  args.insert(args.begin(), "localize");
  std::reverse(args.begin(), args.end());  // CLI11 parses a reversed vector
  app.parse(args);
}

TEST_F(RecordingDir, CommandPrintsAndWritesTheHints) {
  write_recording();
  ::testing::internal::CaptureStdout();
  run_localize_command({dir_.string(), "--anomaly", "6-7", "--no-write"});
  std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("app: anomaly in intervals 6-7 (2.0 s), baseline 0-5 (6.0 s)\n  1. handle_request (app) explains"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("the process waits on disk I/O"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir_ / "hints.json"));

  ::testing::internal::CaptureStdout();
  run_localize_command({dir_.string(), "--anomaly", "6-7", "--baseline", "0-2", "--top", "1"});
  out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("baseline 0-2 (3.0 s)"), std::string::npos) << out;
  EXPECT_EQ(out.find("  2. "), std::string::npos) << out;
  EXPECT_TRUE(fs::exists(dir_ / "hints.json"));
  EXPECT_TRUE(fs::exists(dir_ / "hints.txt"));
  EXPECT_THROW(run_localize_command({dir_.string(), "--anomaly", "x"}), Error);
}

TEST_F(RecordingDir, NotARecordingIsAClearError) {
  try {
    localize_recording(dir_.string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has no intervals.jsonl"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_interval_ranges("7-3"), Error);
  EXPECT_THROW(parse_interval_ranges("x"), Error);
}

}  // namespace
}  // namespace stackwatch::localize
