// IntervalMonitor on synthetic recordings: a steady workload, then a CPU
// spike in a new stack with a load spike. The anomalies name the stack, the
// function and the load series; the StackSamples get labels; a replay of the
// interval log gives the same anomalies and labels.
#include "localize/interval_monitor.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <set>


namespace stackwatch::localize {
namespace {

// frames: outermost first, "module!function".
StackSample make_stack(const std::string& process, uint32_t tid, std::vector<std::string> frames, uint64_t count,
                       StackKind kind = StackKind::kOnCpu, uint64_t off_ns = 0) {
  StackSample s;
  s.tgid = 100;
  s.tid = tid;
  s.process_name = process;
  s.kind = kind;
  s.count = count;
  s.off_ns = off_ns;
  for (auto f = frames.rbegin(); f != frames.rend(); ++f) {
    Frame frame;
    auto bang = f->find('!');
    frame.module = "/usr/bin/" + f->substr(0, bang);
    frame.function = f->substr(bang + 1);
    s.frames.push_back(frame);  // innermost first
  }
  return s;
}

struct Recording {
  std::vector<Interval> intervals;
  std::vector<std::map<std::string, double>> loads;
};

// 60 intervals of 1 s. From interval `spike_at` to spike_at + 2, app spins in
// a never-seen function, taking ~45% of the samples, and cpu_util jumps.
Recording make_recording(int spike_at) {
  std::mt19937_64 rng(2024);
  std::poisson_distribution<int> compute(300), parse(150), idle(50), query(120), flush(20);
  std::normal_distribution<double> util(0.40, 0.02);
  std::poisson_distribution<int> blocked_ms(200);
  Recording r;
  for (int i = 0; i < 60; ++i) {
    Interval in;
    in.index = static_cast<uint64_t>(i);
    in.start_unix_ns = 1'700'000'000'000'000'000 + int64_t{i} * 1'000'000'000;
    in.end_unix_ns = in.start_unix_ns + 1'000'000'000;
    // Two threads share the compute stack: the monitor merges them.
    int c = compute(rng);
    in.stacks.push_back(make_stack("app", 1, {"app!main", "app!work", "app!compute"}, c / 2));
    in.stacks.push_back(make_stack("app", 2, {"app!main", "app!work", "app!compute"}, c - c / 2));
    in.stacks.push_back(make_stack("app", 1, {"app!main", "app!work", "app!parse"}, parse(rng)));
    in.stacks.push_back(make_stack("app", 1, {"app!main", "app!idle"}, idle(rng)));
    in.stacks.push_back(make_stack("db", 7, {"db!serve", "db!query"}, query(rng)));
    in.stacks.push_back(make_stack("db", 7, {"db!serve", "db!flush"}, flush(rng)));
    in.stacks.push_back(make_stack("db", 8, {"db!serve", "db!wait"}, 40, StackKind::kOffCpu,
                                   static_cast<uint64_t>(blocked_ms(rng)) * 1'000'000));
    double cpu = util(rng);
    if (i >= spike_at && i < spike_at + 3) {
      in.stacks.push_back(make_stack("app", 3, {"app!main", "app!work", "app!spin"}, 520));
      cpu = 0.95;
    }
    r.intervals.push_back(std::move(in));
    r.loads.push_back({{"cpu_util", cpu}, {"runnable", 2.0}});
  }
  return r;
}

const Anomaly* find_kind(const std::vector<Anomaly>& all, const std::string& kind) {
  for (const Anomaly& a : all)
    if (a.kind == kind) return &a;
  return nullptr;
}

TEST(IntervalMonitor, CpuSpikeInANewStackIsFlaggedAndExplained) {
  const int kSpikeAt = 40;
  Recording rec = make_recording(kSpikeAt);
  IntervalMonitor monitor;
  std::vector<std::vector<Anomaly>> per_interval;
  for (size_t i = 0; i < rec.intervals.size(); ++i) per_interval.push_back(monitor.observe(rec.intervals[i], rec.loads[i]));

  // Nothing in the steady part (after the warm-up) before the spike.
  size_t quiet = 0;
  for (int i = 0; i < kSpikeAt; ++i) quiet += per_interval[i].size();
  EXPECT_EQ(quiet, 0u);
  for (int i = 0; i < kSpikeAt; ++i)
    for (const Anomaly& a : per_interval[i]) ADD_FAILURE() << a.description;

  const std::vector<Anomaly>& at = per_interval[kSpikeAt];
  const Anomaly* mix = find_kind(at, "new_stack");
  ASSERT_NE(mix, nullptr);
  EXPECT_EQ(mix->interval_index, static_cast<uint64_t>(kSpikeAt));
  ASSERT_FALSE(mix->top.empty());
  EXPECT_EQ(mix->top[0].series, "stack on:app;main;work;spin");
  EXPECT_GT(mix->top[0].contribution, 0.5);
  EXPECT_GT(mix->score, mix->threshold);
  EXPECT_NE(mix->description.find("stack on:app;main;work;spin"), std::string::npos) << mix->description;

  const Anomaly* load = find_kind(at, "load_spike");
  ASSERT_NE(load, nullptr);
  ASSERT_EQ(load->top.size(), 1u);
  EXPECT_EQ(load->top[0].series, "load cpu_util");
  EXPECT_NEAR(load->top[0].contribution, 0.55, 0.1);  // 0.95 - ~0.40

  const Anomaly* stack = find_kind(at, "stack_spike");
  ASSERT_NE(stack, nullptr);
  EXPECT_EQ(stack->top[0].series, "stack on:app;main;work;spin");
  EXPECT_NEAR(stack->top[0].contribution, 520, 1);

  const Anomaly* function = find_kind(at, "function_spike");
  ASSERT_NE(function, nullptr);
  EXPECT_EQ(function->top[0].series, "function on:app!spin");

  // Labels: the spinning stack carries them, the steady stacks do not.
  const Interval& in = rec.intervals[kSpikeAt];
  ASSERT_EQ(in.stacks.back().frames[0].function, "spin");
  ASSERT_TRUE(in.stacks.back().label.has_value());
  EXPECT_NE(in.stacks.back().label->find("new_stack@40 "), std::string::npos) << *in.stacks.back().label;
  EXPECT_NE(in.stacks.back().label->find("stack_spike@40 "), std::string::npos) << *in.stacks.back().label;
  EXPECT_FALSE(in.stacks[4].label.has_value());  // db query
  for (int i = 0; i < kSpikeAt; ++i)
    for (const StackSample& s : rec.intervals[i].stacks) EXPECT_FALSE(s.label.has_value());

  // The spike lasts three intervals: each is flagged for that stack. Three
  // are too few to make 520 samples the new normal, so the return to zero
  // is not an anomaly.
  for (int i = kSpikeAt + 1; i < kSpikeAt + 3; ++i) {
    const Anomaly* still = find_kind(per_interval[i], "stack_spike");
    ASSERT_NE(still, nullptr) << "interval " << i;
    EXPECT_EQ(still->top[0].series, "stack on:app;main;work;spin");
  }
  for (int i = kSpikeAt + 3; i < 60; ++i)
    for (const Anomaly& a : per_interval[i]) ADD_FAILURE() << a.description;
}

TEST(IntervalMonitor, ReplayOfTheIntervalLogGivesTheSameAnomaliesAndLabels) {
  Recording rec = make_recording(35);
  std::string path = std::filesystem::temp_directory_path() /
                     ("stackwatch-intervals-" + std::to_string(::getpid()) + ".jsonl");
  std::vector<std::string> live;
  {
    IntervalMonitor monitor;
    IntervalLogWriter log(path);
    std::set<std::string> seen;
    for (size_t i = 0; i < rec.intervals.size(); ++i) {
      IntervalRecord record;
      for (const Anomaly& a : monitor.observe(rec.intervals[i], rec.loads[i], &record)) live.push_back(a.description);
      // Frames only for stacks the monitor had not seen.
      for (const StackTotal& t : record.stacks) EXPECT_EQ(t.frames.empty(), !seen.insert(t.id).second) << t.id;
      log.append(record);
    }
  }
  std::vector<IntervalRecord> records = read_interval_log(path);
  std::filesystem::remove(path);
  ASSERT_EQ(records.size(), rec.intervals.size());
  IntervalMonitor replay;
  std::vector<std::string> replayed;
  for (size_t i = 0; i < records.size(); ++i) {
    std::vector<std::string> labels;
    for (const Anomaly& a : replay.observe(records[i], &labels)) replayed.push_back(a.description);
    // The live labels of each StackSample equal the replay's for its stack.
    std::vector<uint32_t> to_stack;
    summarize_interval(rec.intervals[i], rec.loads[i], &to_stack);
    for (size_t s = 0; s < rec.intervals[i].stacks.size(); ++s)
      EXPECT_EQ(rec.intervals[i].stacks[s].label.value_or(""), labels[to_stack[s]]) << "interval " << i;
  }
  EXPECT_FALSE(live.empty());
  EXPECT_EQ(live, replayed);
}

TEST(IntervalMonitor, LabelsAccumulateWithoutDuplicates) {
  std::optional<std::string> label;
  add_label(label, "new_stack@3 2026-01-01T00:00:03Z");
  add_label(label, "stack_spike@3 2026-01-01T00:00:03Z");
  add_label(label, "new_stack@3 2026-01-01T00:00:03Z");
  EXPECT_EQ(*label, "new_stack@3 2026-01-01T00:00:03Z; stack_spike@3 2026-01-01T00:00:03Z");
  add_label(label, "stack_spike@3 2026-01-01T00:00:03Z; load_spike@4 2026-01-01T00:00:04Z");
  EXPECT_EQ(*label,
            "new_stack@3 2026-01-01T00:00:03Z; stack_spike@3 2026-01-01T00:00:03Z; load_spike@4 2026-01-01T00:00:04Z");
  Anomaly a;
  a.kind = "load_spike";
  a.interval_index = 12;
  a.start_unix_ns = 1'700'000'012'500'000'000;
  EXPECT_EQ(anomaly_label(a), "load_spike@12 2023-11-14T22:13:32Z");
}

}  // namespace
}  // namespace stackwatch::localize

namespace stackwatch::localize {
namespace {

TEST(IntervalMonitor, ForgetsStacksGoneForLongAndTreatsTheirReturnAsNew) {
  std::mt19937_64 rng(77);
  std::poisson_distribution<int> steady(300);
  IntervalMonitor monitor;
  auto interval = [&](uint64_t i, bool old_stack, uint64_t old_count) {
    Interval in;
    in.index = i;
    in.start_unix_ns = int64_t{1'700'000'000} * 1'000'000'000 + static_cast<int64_t>(i) * 1'000'000'000;
    in.end_unix_ns = in.start_unix_ns + 1'000'000'000;
    in.stacks.push_back(make_stack("app", 1, {"app!main", "app!work"}, steady(rng)));
    in.stacks.push_back(make_stack("app", 1, {"app!main", "app!rest"}, steady(rng)));
    if (old_stack) in.stacks.push_back(make_stack("app", 1, {"app!main", "app!legacy"}, old_count));
    return in;
  };
  uint64_t i = 0;
  for (; i < 30; ++i) {
    Interval in = interval(i, true, 20);
    monitor.observe(in, {});
  }
  // stack x3, function main/work/rest/legacy, process app.
  EXPECT_EQ(monitor.series_count(), 8u);
  for (; i < 30 + IntervalMonitor::kStaleIntervals + IntervalMonitor::kForgetEvery; ++i) {
    Interval in = interval(i, false, 0);
    monitor.observe(in, {});
  }
  EXPECT_EQ(monitor.series_count(), 6u);  // the legacy stack and function are gone

  Interval back = interval(i, true, 400);
  std::vector<Anomaly> anomalies = monitor.observe(back, {});
  const Anomaly* mix = find_kind(anomalies, "new_stack");
  ASSERT_NE(mix, nullptr);
  EXPECT_EQ(mix->top[0].series, "stack on:app;main;legacy");
  EXPECT_EQ(monitor.series_count(), 8u);
}

}  // namespace
}  // namespace stackwatch::localize

namespace stackwatch::localize {
namespace {

// A churning machine: every interval, 50 short-lived processes that were
// never seen before (new pid and comm), 200 new stacks among them with 2 new
// functions each, beside a steady service. Enough to pass every cap within
// a few intervals of kStaleIntervals.
Interval churn_interval(uint64_t i, std::mt19937_64& rng, bool spin) {
  std::poisson_distribution<int> steady(300), tiny(2);
  Interval in;
  in.index = i;
  in.start_unix_ns = int64_t{1'700'000'000} * 1'000'000'000 + static_cast<int64_t>(i) * 5'000'000'000;
  in.end_unix_ns = in.start_unix_ns + 5'000'000'000;
  in.stacks.push_back(make_stack("svc", 1, {"svc!main", "svc!serve", "svc!handle"}, steady(rng)));
  in.stacks.push_back(make_stack("svc", 2, {"svc!main", "svc!serve", "svc!parse"}, steady(rng)));
  for (int k = 0; k < 200; ++k) {
    std::string comm = "job" + std::to_string(i) + "_" + std::to_string(k % 50);
    std::string tag = std::to_string(i) + "_" + std::to_string(k);
    StackSample s = make_stack(comm, static_cast<uint32_t>(10000 + i * 200 + k),
                               {"job!main", "job!step" + tag, "job!leaf" + tag}, 1 + tiny(rng));
    s.tgid = static_cast<uint32_t>(10000 + i * 50 + k % 50);
    in.stacks.push_back(std::move(s));
  }
  if (spin) in.stacks.push_back(make_stack("svc", 3, {"svc!main", "svc!serve", "svc!spin"}, 900));
  return in;
}

TEST(IntervalMonitor, SeriesStayCappedUnderChurnAndAStableAnomalyIsStillFlagged) {
  const uint64_t kIntervals = 300, kSpinAt = 250;
  std::mt19937_64 rng(9);
  std::string path = std::filesystem::temp_directory_path() /
                     ("stackwatch-churn-" + std::to_string(::getpid()) + ".jsonl");
  IntervalMonitor monitor;
  std::vector<std::string> live;
  const Anomaly* spin_mix = nullptr;
  std::vector<Anomaly> at_spin;
  size_t most_stacks = 0, most_functions = 0, most_processes = 0, most_keys = 0;
  {
    IntervalLogWriter log(path);
    for (uint64_t i = 0; i < kIntervals; ++i) {
      Interval in = churn_interval(i, rng, i >= kSpinAt);
      IntervalRecord record;
      std::vector<Anomaly> anomalies = monitor.observe(in, {{"cpu_util", 0.5}}, &record);
      log.append(record);
      for (const Anomaly& a : anomalies) live.push_back(a.description);
      most_stacks = std::max(most_stacks, monitor.stack_count());
      most_functions = std::max(most_functions, monitor.function_count());
      most_processes = std::max(most_processes, monitor.process_count());
      most_keys = std::max(most_keys, log.key_count());
      if (i == kSpinAt) at_spin = anomalies;
    }
  }
  // Without the caps and the 24-interval staleness: 60,000 stacks.
  EXPECT_LE(most_stacks, IntervalMonitor::kMaxStacks);
  EXPECT_LE(most_functions, IntervalMonitor::kMaxFunctions);
  EXPECT_LE(most_processes, IntervalMonitor::kMaxProcesses);
  EXPECT_GT(most_stacks, IntervalMonitor::kMaxStacks / 2);  // the churn did reach the cap
  EXPECT_LT(monitor.series_count(), 16384u);  // a few thousand per category
  EXPECT_LE(monitor.series_count(), IntervalMonitor::kMaxStacks + IntervalMonitor::kMaxFunctions +
                                        IntervalMonitor::kMaxProcesses + 1);
  // The log's key table: only the stacks of the last kForgetAfter intervals.
  EXPECT_LE(most_keys, 202 * (IntervalLogWriter::kForgetAfter + IntervalLogWriter::kForgetEvery));
  EXPECT_LT(most_keys, 20000u);  // of 60,002 stacks

  // The steady service's new hot stack is flagged and named as before.
  spin_mix = find_kind(at_spin, "new_stack");
  ASSERT_NE(spin_mix, nullptr);
  EXPECT_EQ(spin_mix->top[0].series, "stack on:svc;main;serve;spin");
  const Anomaly* spike = find_kind(at_spin, "stack_spike");
  ASSERT_NE(spike, nullptr);
  EXPECT_EQ(spike->top[0].series, "stack on:svc;main;serve;spin");

  // The log of a churning recording replays to the same anomalies: the
  // writer forgets no stack the monitor still knows.
  std::vector<IntervalRecord> records = read_interval_log(path);
  std::filesystem::remove(path);
  ASSERT_EQ(records.size(), kIntervals);
  IntervalMonitor replay;
  std::vector<std::string> replayed;
  for (const IntervalRecord& r : records)
    for (const Anomaly& a : replay.observe(r)) replayed.push_back(a.description);
  EXPECT_EQ(live, replayed);
}

}  // namespace
}  // namespace stackwatch::localize
