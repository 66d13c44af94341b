// `stackwatch detect`: the CSV mode writes the labelled CSV; the DIR mode
// replays intervals.jsonl and agrees with the labels a live run put in
// stacks.json, and says so when they differ.
#include <CLI/CLI.hpp>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "localize/localize.h"
#include "profiler/commands.h"
#include "recording/error.h"
#include "recording/stacks_json.h"

namespace stackwatch {
namespace {

namespace fs = std::filesystem;

void run(std::vector<std::string> args) {
  CLI::App app;
  cli::register_detect_command(app);
  args.insert(args.begin(), "detect");
  std::reverse(args.begin(), args.end());  // CLI11 parses a reversed vector
  app.parse(args);
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("stackwatch-detect-" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(DetectCommand, CsvWritesScoresAndLabels) {
  TempDir dir;
  std::mt19937_64 rng(4);
  std::normal_distribution<double> n(0, 1);
  {
    std::ofstream f(dir.path / "s.csv");
    f << "timestamp,value\n";
    for (int i = 0; i < 100; ++i) f << 1600000000 + i * 60 << "," << (i == 70 ? 30 : 10 + n(rng)) << "\n";
  }
  run({(dir.path / "s.csv").string(), "-o", (dir.path / "out.csv").string(), "-q"});
  std::string out = slurp(dir.path / "out.csv");
  EXPECT_EQ(out.substr(0, out.find('\n')), "timestamp,value_score,value_anomaly");
  std::istringstream lines(out);
  std::string line;
  std::vector<std::string> rows;
  while (std::getline(lines, line)) rows.push_back(line);
  ASSERT_EQ(rows.size(), 101u);
  EXPECT_EQ(rows[71].substr(0, 11), "1600004200,");
  EXPECT_EQ(rows[71].back(), '1');
  size_t flagged = 0;
  for (size_t i = 1; i < rows.size(); ++i) flagged += rows[i].back() == '1';
  EXPECT_EQ(flagged, 1u);
}

TEST(DetectCommand, CsvBadRowIsAnErrorNamingTheLine) {
  TempDir dir;
  {
    std::ofstream f(dir.path / "bad.csv");
    f << "timestamp,value\n1,2\n2,3\n3,x\n";
  }
  try {
    run({(dir.path / "bad.csv").string(), "-o", (dir.path / "out.csv").string()});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), (dir.path / "bad.csv").string() + ":4: column \"value\": \"x\" is not a finite number");
  }
  EXPECT_FALSE(fs::exists(dir.path / "out.csv"));  // nothing half-written
}

// A recording as `record` would leave it: intervals.jsonl from the monitor,
// and stacks.json aggregated over the run with the labels merged in.
void write_recording(const fs::path& dir) {
  std::mt19937_64 rng(11);
  std::poisson_distribution<int> base(200), other(80);
  localize::IntervalMonitor monitor;
  localize::IntervalLogWriter log((dir / "intervals.jsonl").string());
  std::map<std::string, StackSample> total;
  auto frame = [](const char* fn) {
    Frame f;
    f.function = fn;
    f.module = "/usr/bin/app";
    return f;
  };
  for (int i = 0; i < 40; ++i) {
    Interval in;
    in.index = i;
    in.start_unix_ns = 1'700'000'000'000'000'000 + int64_t{i} * 1'000'000'000;
    in.end_unix_ns = in.start_unix_ns + 1'000'000'000;
    StackSample a;
    a.process_name = "app";
    a.tgid = a.tid = 5;
    a.frames = {frame("compute"), frame("main")};
    a.count = base(rng);
    StackSample b = a;
    b.frames = {frame("parse"), frame("main")};
    b.count = other(rng);
    in.stacks = {a, b};
    if (i == 30) {
      StackSample c = a;
      c.frames = {frame("spin"), frame("main")};
      c.count = 250;
      in.stacks.push_back(c);
      // A second thread spins too, in this interval only.
      c.tid = 6;
      c.count = 200;
      in.stacks.push_back(c);
    }
    if (i == 31) {
      StackSample c = a;
      c.frames = {frame("spin"), frame("main")};
      c.count = 450;
      in.stacks.push_back(c);
    }
    localize::IntervalRecord record;
    monitor.observe(in, {{"cpu_util", i == 30 ? 0.9 : 0.3}}, &record);
    log.append(record);
    for (const StackSample& s : in.stacks) {
      // stacks.json has one entry per thread and stack.
      auto [it, inserted] = total.try_emplace(std::to_string(s.tid) + " " + localize::stack_identity(s), s);
      if (!inserted) it->second.count += s.count;
      if (s.label) localize::add_label(it->second.label, *s.label);
    }
  }
  std::vector<StackSample> stacks;
  for (auto& [id, s] : total) stacks.push_back(s);
  std::ofstream(dir / "stacks.json") << stacks_to_json(stacks, {}).dump();
}

TEST(DetectCommand, DirReplayAgreesWithTheLiveLabels) {
  TempDir dir;
  write_recording(dir.path);
  std::string json = slurp(dir.path / "stacks.json");
  ASSERT_NE(json.find("new_stack@30 "), std::string::npos);  // the live run labelled spin
  testing::internal::CaptureStdout();
  std::string error;
  try {
    run({dir.path.string(), "-o", (dir.path / "anomalies.jsonl").string()});
  } catch (const std::exception& e) {
    error = e.what();
  }
  std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(error, "");
  EXPECT_NE(out.find("interval 30 (2023-11-14T22:13:50Z): new_stack: on-CPU stack mix changed"), std::string::npos)
      << out;
  EXPECT_NE(out.find("stacks.json labels: replay agrees on all 3 stacks"), std::string::npos) << out;
  // Thread 5 spun in intervals 30 and 31, thread 6 in 30 only: their labels
  // differ, and together they are what the replay gives the stack.
  EXPECT_NE(json.find("\"label\":\"stack_spike@30 2023-11-14T22:13:50Z; new_stack@30 2023-11-14T22:13:50Z\""),
            std::string::npos);
  EXPECT_NE(json.find("@31 "), std::string::npos);
  std::string anomalies = slurp(dir.path / "anomalies.jsonl");
  EXPECT_NE(anomalies.find("\"kind\":\"new_stack\""), std::string::npos);

  // A label the replay does not give is reported.
  size_t at = json.find("\"label\":null");
  ASSERT_NE(at, std::string::npos);
  json.replace(at, 12, "\"label\":\"made_up@1\"");
  std::ofstream(dir.path / "stacks.json") << json;
  testing::internal::CaptureStdout();
  error.clear();
  try {
    run({dir.path.string()});
  } catch (const Error& e) {
    error = e.what();
  }
  out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(error, "replay labels differ from " + (dir.path / "stacks.json").string() + " on 1 of 3 stacks");
  EXPECT_NE(out.find("stacks.json has \"made_up@1\""), std::string::npos) << out;
}

TEST(DetectCommand, DirWithoutIntervalLogIsAnError) {
  TempDir dir;
  try {
    run({dir.path.string()});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has no intervals.jsonl"), std::string::npos);
  }
}

}  // namespace
}  // namespace stackwatch
