// The live localizer's compact history (profiler/baseline_history.h): the
// baseline it gives back is what the full StackSamples gave (same suspects,
// same differential flame graph), and its memory stays flat on a churning
// machine, every table emptying when the intervals that used it leave.
#include "profiler/baseline_history.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "flamegraph/flamegraph.h"
#include "localize/suspect_ranking.h"

namespace stackwatch::profiler {
namespace {

// A frame as the symbolizer fills it, with the fields the history drops.
Frame frame(const std::string& function, const std::string& module, uint64_t offset, uint64_t load_base,
            bool kernel = false) {
  Frame f;
  f.function = function;
  f.module = module;
  f.module_offset = offset;
  f.address = load_base + offset;
  f.kernel = kernel;
  if (!kernel) {
    f.build_id = "3f2c9a0d6b1e4f5a8c7d2e1f0a9b8c7d6e5f4a3b";
    f.file = "/build/src/" + function + ".c";
    f.line = 42;
    f.column = 7;
  }
  return f;
}

// One process's stacks: a hot leaf (`slow` or `fast`), a blocked read.
std::vector<StackSample> process_stacks(uint32_t tgid, const std::string& comm, uint64_t base, bool slow,
                                        uint64_t count) {
  const std::string app = "/opt/service/bin/" + comm;
  const std::string libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  StackSample on;
  on.tgid = tgid;
  on.tid = tgid + 1;
  on.process_name = comm;
  on.thread_name = comm + "-worker";
  on.count = count;
  on.frames = {frame(slow ? "slow_path" : "fast_path", app, 0x1200, base), frame("handle", app, 0x1100, base),
               frame("main", app, 0x1000, base), frame("__libc_start_main", libc, 0x27000, base + 0x100000)};
  StackSample off = on;
  off.tid = tgid;
  off.thread_name = comm;
  off.kind = StackKind::kOffCpu;
  off.count = 3;
  off.off_ns = 40'000'000 + count * 1000;
  off.off_state = OffCpuState::kInterruptible;
  off.frames = {frame("schedule", "[kernel]", 0, 0xffffffff81000000ULL, true),
                frame("read", libc, 0x114000, base + 0x100000), frame("handle", app, 0x1100, base),
                frame("main", app, 0x1000, base)};
  return {on, off};
}

void expect_kept_fields_equal(const StackSample& a, const StackSample& b) {
  EXPECT_EQ(a.tgid, b.tgid);
  EXPECT_EQ(a.tid, b.tid);
  EXPECT_EQ(a.process_name, b.process_name);
  EXPECT_EQ(a.thread_name, b.thread_name);
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.count, b.count);
  EXPECT_EQ(a.off_ns, b.off_ns);
  EXPECT_EQ(a.off_state, b.off_state);
  EXPECT_EQ(a.detail, b.detail);
  EXPECT_EQ(a.label, b.label);
  ASSERT_EQ(a.frames.size(), b.frames.size());
  for (size_t i = 0; i < a.frames.size(); ++i) {
    EXPECT_EQ(a.frames[i].function, b.frames[i].function);
    EXPECT_EQ(a.frames[i].module, b.frames[i].module);
    EXPECT_EQ(a.frames[i].module_offset, b.frames[i].module_offset);
    EXPECT_EQ(a.frames[i].kernel, b.frames[i].kernel);
    EXPECT_EQ(a.frames[i].inlined, b.frames[i].inlined);
  }
}

TEST(BaselineHistory, GivesBackTheNormalIntervalsStacksOfOneProcessInOrder) {
  BaselineHistory h(3);
  std::vector<StackSample> a = process_stacks(100, "api", 0x555500000000, false, 40);
  std::vector<StackSample> b = process_stacks(200, "db", 0x566600000000, false, 10);
  std::vector<StackSample> iv0 = a, iv2 = b;
  iv0.insert(iv0.end(), b.begin(), b.end());
  StackSample memory = a[0];
  memory.kind = StackKind::kMemory;  // not a CPU stack: not kept
  iv0.push_back(memory);
  iv2.insert(iv2.end(), a.begin(), a.end());
  iv2[0].label = "stack_spike@2 2026-11-23T13:30:05Z";
  h.add(0, 5.0, false, iv0);
  h.add(1, 5.0, true, iv0);  // anomalous: never in a baseline
  h.add(2, 4.0, false, iv2);
  EXPECT_EQ(h.normal_intervals(), 2u);
  EXPECT_EQ(h.samples(), 8u);

  BaselineHistory::Baseline all = h.baseline();
  EXPECT_EQ(all.intervals, (std::vector<uint64_t>{0, 2}));
  EXPECT_DOUBLE_EQ(all.seconds, 9.0);
  ASSERT_EQ(all.stacks.size(), 8u);
  std::vector<StackSample> expected = {a[0], a[1], b[0], b[1], iv2[0], iv2[1], a[0], a[1]};
  for (size_t i = 0; i < expected.size(); ++i) expect_kept_fields_equal(all.stacks[i], expected[i]);

  BaselineHistory::Baseline api = h.baseline(UINT64_MAX, 100);
  ASSERT_EQ(api.stacks.size(), 4u);
  for (const StackSample& s : api.stacks) EXPECT_EQ(s.tgid, 100u);
  EXPECT_EQ(api.intervals, (std::vector<uint64_t>{0, 2}));
  BaselineHistory::Baseline before = h.baseline(2, 200);
  EXPECT_EQ(before.intervals, (std::vector<uint64_t>{0}));
  ASSERT_EQ(before.stacks.size(), 2u);
  expect_kept_fields_equal(before.stacks[0], b[0]);

  h.add(3, 5.0, false, b);  // interval 0 leaves
  EXPECT_EQ(h.intervals(), 3u);
  EXPECT_EQ(h.baseline().intervals, (std::vector<uint64_t>{2, 3}));
}

TEST(BaselineHistory, SuspectsAndDiffFlameGraphAreTheFullStacksOnes) {
  BaselineHistory h(21);
  std::vector<StackSample> full;
  for (uint64_t i = 0; i < 20; ++i) {
    std::vector<StackSample> iv = process_stacks(100, "api", 0x555500000000, false, 40 + i % 3);
    std::vector<StackSample> other = process_stacks(300 + static_cast<uint32_t>(i), "job", 0x7f0000000000 + i * 0x1000000, true, 5);
    iv.insert(iv.end(), other.begin(), other.end());
    h.add(i, 5.0, false, iv);
    full.insert(full.end(), iv.begin(), iv.end());
  }
  std::vector<StackSample> anomaly = process_stacks(100, "api", 0x555500000000, true, 200);
  localize::RankOptions ro;
  auto want = localize::rank_suspects(full, 100.0, anomaly, 5.0, localize::ProcessFilter{100, ""}, ro);
  BaselineHistory::Baseline base = h.baseline(UINT64_MAX, 100);
  auto got = localize::rank_suspects(base.stacks, base.seconds, anomaly, 5.0, localize::ProcessFilter{100, ""}, ro);
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(want.front().function.name, "slow_path");
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].to_json().dump(), want[i].to_json().dump());

  std::vector<StackSample> full_p;
  for (const StackSample& s : full)
    if (s.tgid == 100) full_p.push_back(s);
  flamegraph::SvgOptions o;
  o.title = "diff";
  EXPECT_EQ(flamegraph::render_diff_svg(base.stacks, anomaly, o), flamegraph::render_diff_svg(full_p, anomaly, o));
}

// Every interval: 200 processes never seen before (new pids, new comms,
// their own binaries' load addresses), 2 stacks each.
std::vector<StackSample> churn_interval(uint64_t i) {
  std::vector<StackSample> out;
  for (uint32_t k = 0; k < 200; ++k) {
    uint32_t tgid = static_cast<uint32_t>(10000 + i * 200 + k);
    std::string comm = "job-" + std::to_string(i) + "-" + std::to_string(k);
    std::vector<StackSample> p = process_stacks(tgid, comm, 0x550000000000 + uint64_t{tgid} * 0x10000, k % 2 == 0, 2);
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

TEST(BaselineHistory, MemoryStaysFlatUnderChurnAndEmptiesWhenTheIntervalsLeave) {
  const size_t kKept = 21;
  BaselineHistory h(kKept);
  size_t at_50 = 0, most = 0, most_strings = 0, most_frames = 0;
  for (uint64_t i = 0; i < 300; ++i) {
    h.add(i, 5.0, false, churn_interval(i));
    if (i == 50) at_50 = h.memory_bytes();
    most = std::max(most, h.memory_bytes());
    most_strings = std::max(most_strings, h.string_count());
    most_frames = std::max(most_frames, h.frame_count());
  }
  EXPECT_EQ(h.samples(), kKept * 400);
  // Per process: comm, thread names, its binary's path, ~5 function names
  // shared by all; frames: 4 per binary plus the shared libc and kernel ones.
  EXPECT_LE(most_strings, kKept * 200 * 4 + 16);
  EXPECT_LE(most_frames, kKept * 200 * 3 + 16);
  // Flat: 250 more intervals of churn cost nothing more (hash tables may
  // have grown a bucket array by then).
  EXPECT_LE(most, at_50 * 5 / 4);
  // 21 intervals x 400 samples x 4 frames of churn in a few MB, not the
  // ~10 MB the full StackSamples (~300 bytes a frame) took.
  EXPECT_LT(most, 4u << 20) << most << " bytes";
  for (uint64_t i = 300; i < 300 + kKept; ++i) h.add(i, 5.0, true, churn_interval(i));
  EXPECT_EQ(h.samples(), 0u);
  EXPECT_EQ(h.string_count(), 0u);
  EXPECT_EQ(h.frame_count(), 0u);
  EXPECT_EQ(h.stack_count(), 0u);
}

}  // namespace
}  // namespace stackwatch::profiler
