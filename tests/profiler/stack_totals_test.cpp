// StackTotals bounding: stacks of exited processes and idle stacks leave the
// live view and are merged, while every count, blocked time and label stays
// in the totals the output files are written from.
#include "profiler/stack_totals.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace stackwatch::profiler {
namespace {

Frame frame(const std::string& function, uint64_t address, const std::string& module = "/usr/bin/app") {
  Frame f;
  f.function = function;
  f.address = address;
  f.module = module;
  return f;
}

// One stack of process tgid (comm `comm`), thread tid: main -> work, with
// the addresses shifted by `aslr` as a new process's would be.
StackSample sample(uint32_t tgid, uint32_t tid, const std::string& comm, uint64_t aslr, StackKind kind,
                   uint64_t count, uint64_t off_ns = 0, const std::string& leaf = "work") {
  StackSample s;
  s.tgid = tgid;
  s.tid = tid;
  s.process_name = comm;
  s.thread_name = comm;
  s.kind = kind;
  s.off_state = kind == StackKind::kOffCpu ? OffCpuState::kInterruptible : OffCpuState::kNone;
  s.frames = {frame(leaf, aslr + 0x1010), frame("main", aslr + 0x2020)};
  s.count = count;
  s.off_ns = off_ns;
  return s;
}

// Exits are told by end_interval() in these tests, never found by looking.
bool all_alive(uint32_t) { return true; }

struct Sums {
  uint64_t on = 0, off_events = 0, off_ns = 0;
};
Sums sums(const std::vector<StackSample>& stacks) {
  Sums t;
  for (const StackSample& s : stacks) {
    if (s.kind == StackKind::kOnCpu) t.on += s.count;
    else {
      t.off_events += s.count;
      t.off_ns += s.off_ns;
    }
  }
  return t;
}

TEST(StackTotals, ExitedProcessesOfOneCommAndCodeMergeIntoOneEntryWithExactTotals) {
  StackTotals totals(/*idle_intervals=*/1, all_alive);
  // Interval 0: three short-lived `sh` running the same code (different
  // addresses: ASLR) and one long-lived `app`.
  totals.add({sample(100, 100, "sh", 0x10000, StackKind::kOnCpu, 2), sample(101, 101, "sh", 0x20000, StackKind::kOnCpu, 3),
              sample(102, 102, "sh", 0x30000, StackKind::kOnCpu, 5),
              sample(102, 102, "sh", 0x30000, StackKind::kOffCpu, 1, 7000),
              sample(50, 51, "app", 0x40000, StackKind::kOnCpu, 11)});
  totals.end_interval({100, 101, 102});
  // Just exited: still live, split by pid (a COMMAND that just exited keeps
  // its per-thread split in the files).
  EXPECT_EQ(totals.stacks().size(), 5u);
  totals.add({sample(50, 51, "app", 0x40000, StackKind::kOnCpu, 11)});
  totals.end_interval();  // idle for an interval: merged
  std::vector<StackSample> stacks = totals.stacks();
  ASSERT_EQ(stacks.size(), 3u);  // sh on-CPU, sh off-CPU, app
  // Ordered by tgid: app (50) first, then the merged sh entries under the
  // pid of the first of them (100).
  EXPECT_EQ(stacks[0].tgid, 50u);
  EXPECT_EQ(stacks[0].count, 22u);
  EXPECT_EQ(stacks[1].tgid, 100u);
  EXPECT_EQ(stacks[1].process_name, "sh");
  EXPECT_EQ(stacks[1].kind, StackKind::kOnCpu);
  EXPECT_EQ(stacks[1].count, 10u);
  EXPECT_EQ(stacks[1].frames[0].function, "work");
  EXPECT_EQ(stacks[1].frames[0].address, 0x11010u);  // the first one's addresses
  EXPECT_EQ(stacks[2].kind, StackKind::kOffCpu);
  EXPECT_EQ(stacks[2].tgid, 102u);
  EXPECT_EQ(stacks[2].off_ns, 7000u);
  EXPECT_EQ(totals.live_size(), 1u);  // only app's stack is live
  EXPECT_EQ(totals.aging().exited_processes, 3u);
  EXPECT_EQ(totals.aging().aged, 4u);
  EXPECT_EQ(totals.aging().merged, 2u);
  EXPECT_EQ(totals.samples(StackKind::kOnCpu), 32u);
  EXPECT_EQ(totals.samples(StackKind::kOffCpu), 1u);
}

TEST(StackTotals, DifferentCodeOrNamesStayApartWhenMerged) {
  StackTotals totals(/*idle_intervals=*/1, all_alive);
  totals.add({sample(100, 100, "sh", 0x10000, StackKind::kOnCpu, 1), sample(101, 101, "sh", 0x20000, StackKind::kOnCpu, 1, 0, "other"),
              sample(102, 102, "env", 0x30000, StackKind::kOnCpu, 1)});
  totals.end_interval({100, 101, 102});
  totals.end_interval();
  EXPECT_EQ(totals.live_size(), 0u);
  EXPECT_EQ(totals.stacks().size(), 3u);
  EXPECT_EQ(totals.aging().merged, 0u);
}

TEST(StackTotals, IdleStacksOfALiveProcessMergeAcrossThreadsButKeepTheirPid) {
  StackTotals totals(/*idle_intervals=*/2, all_alive);
  // Threads 51 and 52 of app run the same code once; app's pid stays apart
  // from another live process's same code.
  totals.add({sample(50, 51, "app", 0x40000, StackKind::kOnCpu, 4), sample(50, 52, "app", 0x40000, StackKind::kOnCpu, 6),
              sample(60, 60, "app", 0x50000, StackKind::kOnCpu, 1)});
  totals.end_interval();  // interval 0
  EXPECT_EQ(totals.live_size(), 3u);
  totals.add({sample(60, 60, "app", 0x50000, StackKind::kOnCpu, 1)});
  totals.end_interval();  // interval 1: 50's stacks idle for 1 interval
  EXPECT_EQ(totals.live_size(), 3u);
  totals.add({sample(60, 60, "app", 0x50000, StackKind::kOnCpu, 1)});
  totals.end_interval();  // interval 2: idle for 2: aged
  EXPECT_EQ(totals.live_size(), 1u);
  std::vector<StackSample> stacks = totals.stacks();
  ASSERT_EQ(stacks.size(), 2u);
  EXPECT_EQ(stacks[0].tgid, 50u);
  EXPECT_EQ(stacks[0].count, 10u);
  EXPECT_EQ(stacks[1].tgid, 60u);
  EXPECT_EQ(stacks[1].count, 3u);
  // The same stack again later: a new live entry; the total is still exact.
  totals.add({sample(50, 51, "app", 0x40000, StackKind::kOnCpu, 5)});
  totals.end_interval();
  EXPECT_EQ(totals.samples(StackKind::kOnCpu), 18u);
  // Then app exits: its aged entry is re-keyed without pid at once, its
  // live one joins it once idle.
  totals.end_interval({50});
  EXPECT_EQ(totals.stacks().size(), 3u);
  totals.end_interval();
  stacks = totals.stacks();
  ASSERT_EQ(stacks.size(), 2u);
  EXPECT_EQ(stacks[0].tgid, 50u);
  EXPECT_EQ(stacks[0].count, 15u);
}

TEST(StackTotals, LabelsOfMergedStacksAreKept) {
  StackTotals totals(/*idle_intervals=*/1, all_alive);
  StackSample a = sample(100, 100, "sh", 0x10000, StackKind::kOnCpu, 1);
  a.label = "new_stack@3 2026-11-23T13:30:05Z";
  StackSample b = sample(101, 101, "sh", 0x20000, StackKind::kOnCpu, 1);
  b.label = "stack_mix@4 2026-11-23T13:30:10Z";
  totals.add({a, b});
  totals.end_interval({100, 101});
  totals.end_interval();
  std::vector<StackSample> stacks = totals.stacks();
  ASSERT_EQ(stacks.size(), 1u);
  ASSERT_TRUE(stacks[0].label.has_value());
  EXPECT_EQ(*stacks[0].label, "new_stack@3 2026-11-23T13:30:05Z; stack_mix@4 2026-11-23T13:30:10Z");
}

// Churn: thousands of short-lived processes with a handful of comms and
// code paths, for many intervals. The table stays at the number of distinct
// (comm, code) pairs, and the totals equal the sums of everything added.
TEST(StackTotals, ChurnStaysBoundedAndTotalsAreExact) {
  StackTotals totals(/*idle_intervals=*/3, all_alive);
  std::mt19937 rng(9);
  const std::vector<std::string> comms = {"sh", "true", "env", "churn_copy_1", "churn_copy_2"};
  const std::vector<std::string> leaves = {"work", "spin", "exit_mmap", "do_wait"};
  Sums added;
  uint32_t next_pid = 1000;
  size_t max_size = 0;
  for (int interval = 0; interval < 200; ++interval) {
    std::vector<StackSample> stacks;
    std::vector<uint32_t> exited;
    for (int p = 0; p < 50; ++p) {
      uint32_t pid = next_pid++;
      const std::string& comm = comms[rng() % comms.size()];
      uint64_t aslr = (rng() % 4096) << 12;
      for (int t = 0; t < 2; ++t) {
        StackKind kind = rng() % 2 ? StackKind::kOnCpu : StackKind::kOffCpu;
        uint64_t count = 1 + rng() % 5;
        uint64_t off_ns = kind == StackKind::kOffCpu ? 1000 * (1 + rng() % 1000) : 0;
        stacks.push_back(sample(pid, pid + t, comm, aslr, kind, count, off_ns, leaves[rng() % leaves.size()]));
      }
      exited.push_back(pid);
    }
    // A long-lived process with a new stack (a new address) every interval.
    stacks.push_back(sample(7, 7, "daemon", 0x7000 + 16 * static_cast<uint64_t>(interval % 64), StackKind::kOnCpu, 1));
    Sums s = sums(stacks);
    added.on += s.on;
    added.off_events += s.off_events;
    added.off_ns += s.off_ns;
    totals.add(stacks);
    totals.end_interval(exited);
    max_size = std::max(max_size, totals.size() - totals.live_size());
    EXPECT_LE(totals.live_size(), 3u * 101u) << "the live view: the last idle_intervals intervals";
  }
  // Aged: comms x leaves x kinds (threads of one process share the comm),
  // plus the daemon's stacks merged by function (one).
  EXPECT_LE(max_size, comms.size() * leaves.size() * 2 + 1);
  Sums total = sums(totals.stacks());
  EXPECT_EQ(total.on, added.on);
  EXPECT_EQ(total.off_events, added.off_events);
  EXPECT_EQ(total.off_ns, added.off_ns);
  EXPECT_EQ(totals.samples(StackKind::kOnCpu), added.on);
  EXPECT_EQ(totals.aging().exited_processes, 200u * 50u);
}

// Most short-lived processes are never reported exited (only those sampled
// on-CPU are): their stacks leave the live view once found gone, an
// interval after their last stack.
TEST(StackTotals, ProcessesFoundGoneAreRetiredTheIntervalAfterTheirLastStack) {
  std::set<uint32_t> alive = {100, 101, 50};
  StackTotals totals(/*idle_intervals=*/1, [&](uint32_t tgid) { return alive.contains(tgid); });
  totals.add({sample(100, 100, "sh", 0x10000, StackKind::kOffCpu, 1, 3000),
              sample(101, 101, "sh", 0x20000, StackKind::kOffCpu, 2, 4000),
              sample(50, 50, "app", 0x40000, StackKind::kOnCpu, 1)});
  alive.erase(100);
  alive.erase(101);
  totals.end_interval();  // both had stacks this interval: not checked yet
  EXPECT_EQ(totals.live_size(), 3u);
  totals.add({sample(50, 50, "app", 0x40000, StackKind::kOnCpu, 1)});
  totals.end_interval();
  EXPECT_EQ(totals.live_size(), 1u);
  EXPECT_EQ(totals.aging().exited_processes, 2u);
  std::vector<StackSample> stacks = totals.stacks();
  ASSERT_EQ(stacks.size(), 2u);
  EXPECT_EQ(stacks[1].tgid, 100u);
  EXPECT_EQ(stacks[1].count, 3u);
  EXPECT_EQ(stacks[1].off_ns, 7000u);
  // An idle stack of a live process is aged with its pid, and retired (merged
  // without it) once the process is gone.
  StackTotals idle(/*idle_intervals=*/1, [&](uint32_t tgid) { return alive.contains(tgid); });
  idle.add({sample(50, 50, "app", 0x40000, StackKind::kOnCpu, 4)});
  idle.end_interval();
  idle.end_interval();
  EXPECT_EQ(idle.live_size(), 0u);
  EXPECT_EQ(idle.aging().exited_processes, 0u);
  alive.erase(50);
  idle.end_interval();
  EXPECT_EQ(idle.aging().exited_processes, 1u);
  EXPECT_EQ(idle.samples(StackKind::kOnCpu), 4u);
  EXPECT_EQ(idle.size(), 1u);
}

// A long tail of distinct stacks (a stripped binary preempted at a new
// address each time): the aged table stays at its bound, the lightest fold
// into "[other stacks]", the heaviest keep their frames, totals are exact.
TEST(StackTotals, TheLongTailIsFoldedIntoOtherStacksWithinTheBound) {
  StackTotals totals(/*idle_intervals=*/1, all_alive, /*max_aged_entries=*/40);
  uint64_t added = 0, added_ns = 0;
  size_t max_size = 0;
  for (int interval = 0; interval < 50; ++interval) {
    std::vector<StackSample> stacks;
    for (int i = 0; i < 10; ++i) {
      // One heavy stack, always the same; nine light ones, new every time.
      bool heavy = i == 0;
      StackSample s = sample(300, 300, "cc1plus", 0, heavy ? StackKind::kOnCpu : StackKind::kOffCpu, heavy ? 50 : 1,
                             heavy ? 0 : 1000, heavy ? "parse" : "f" + std::to_string(interval * 10 + i));
      added += s.count;
      added_ns += s.off_ns;
      stacks.push_back(std::move(s));
    }
    totals.add(stacks);
    totals.end_interval();
    max_size = std::max(max_size, totals.size());
  }
  // 40 aged + the other-stacks entry + one interval's live stacks.
  EXPECT_LE(max_size, 40u + 1 + 10);
  std::vector<StackSample> stacks = totals.stacks();
  Sums total = sums(stacks);
  EXPECT_EQ(total.on + total.off_events, added);
  EXPECT_EQ(total.off_ns, added_ns);
  ASSERT_FALSE(stacks.empty());
  EXPECT_EQ(stacks[0].frames[0].function, "parse");  // the heaviest keeps its frames
  EXPECT_EQ(stacks[0].count, 50u * 50u);
  bool other = false;
  for (const StackSample& s : stacks)
    if (s.frames.size() == 1 && s.frames[0].function == StackTotals::kOtherStacks) {
      other = true;
      EXPECT_EQ(s.process_name, "cc1plus");
      EXPECT_GT(s.count, 300u);
    }
  EXPECT_TRUE(other);
  EXPECT_GT(totals.aging().folded, 300u);
}

TEST(StackTotals, StacksAreOrderedDeterministically) {
  auto build = [](bool reversed) {
    StackTotals totals(StackTotals::kIdleIntervals, all_alive);
    std::vector<StackSample> in = {sample(5, 5, "a", 0, StackKind::kOnCpu, 1, 0, "x"),
                                   sample(5, 5, "a", 0, StackKind::kOnCpu, 1, 0, "y"),
                                   sample(5, 5, "a", 0, StackKind::kOnCpu, 1, 0, "z"),
                                   sample(5, 5, "a", 0, StackKind::kOnCpu, 3, 0, "w")};
    if (reversed) std::reverse(in.begin(), in.end());
    totals.add(in);
    std::vector<std::string> leaves;
    for (const StackSample& s : totals.stacks()) leaves.push_back(s.frames[0].function);
    return leaves;
  };
  EXPECT_EQ(build(false), (std::vector<std::string>{"w", "x", "y", "z"}));
  EXPECT_EQ(build(true), build(false));
}

TEST(StackTotals, AgingJsonSaysWhatWasMerged) {
  StackTotals totals(/*idle_intervals=*/1, all_alive);
  totals.add({sample(100, 100, "sh", 0x10000, StackKind::kOnCpu, 1), sample(101, 101, "sh", 0x20000, StackKind::kOnCpu, 1)});
  totals.end_interval({100, 101});
  totals.end_interval();
  nlohmann::json j = totals.aging_json();
  EXPECT_EQ(j["exited_processes"], 2);
  EXPECT_EQ(j["entries_merged"], 1);
  EXPECT_EQ(j["aged_entries"], 1);
  EXPECT_EQ(j["live_entries"], 0);
}

// Frames are stored once however many stacks hold them, come back whole
// (every field), and are freed when no stack holds them any more: the table
// follows the stacks kept, not the addresses ever seen.
TEST(StackTotals, FramesAreSharedAndFreedWithTheirLastStack) {
  StackTotals totals(/*idle_intervals=*/1, all_alive);
  std::vector<StackSample> threads;
  for (uint32_t tid = 10; tid < 110; ++tid) threads.push_back(sample(10, tid, "app", 0x40000, StackKind::kOnCpu, 1));
  threads[0].frames[0].file = "work.c";
  threads[0].frames[0].line = 12;
  threads[0].frames[0].build_id = "abcd";
  threads[0].frames[1].inlined = true;
  totals.add(threads);
  // 100 threads, two frames each: two shared frames, plus the two of thread
  // 10 that differ (file, line, build-id, inlined).
  EXPECT_EQ(totals.frame_count(), 4u);
  std::vector<StackSample> back = totals.stacks();
  ASSERT_EQ(back.size(), 100u);
  const StackSample* first = nullptr;
  for (const StackSample& s : back)
    if (s.tid == 10) first = &s;
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->frames[0].file, "work.c");
  EXPECT_EQ(first->frames[0].line, 12u);
  EXPECT_EQ(first->frames[0].build_id, "abcd");
  EXPECT_TRUE(first->frames[1].inlined);
  EXPECT_EQ(first->frames[0].address, 0x40000u + 0x1010);
  totals.end_interval();

  // A thousand short-lived `sh`, each at new addresses (ASLR), each exited:
  // merged into one aged entry, which keeps the frames of the first only.
  uint64_t added = 0;
  for (uint32_t p = 0; p < 1000; ++p) {
    totals.add({sample(1000 + p, 1000 + p, "sh", 0x100000ull * (p + 1), StackKind::kOnCpu, p + 1)});
    added += p + 1;
    totals.end_interval({1000 + p});
  }
  totals.end_interval();
  totals.end_interval();
  // The app's (aged: idle) stacks and the one merged `sh`: 4 + 2 frames.
  EXPECT_EQ(totals.frame_count(), 6u);
  uint64_t sh = 0;
  for (const StackSample& s : totals.stacks())
    if (s.process_name == "sh") {
      sh += s.count;
      EXPECT_EQ(s.frames[0].address, 0x100000u + 0x1010);  // the first's
    }
  EXPECT_EQ(sh, added);
}

}  // namespace
}  // namespace stackwatch::profiler

#if !defined(__SANITIZE_ADDRESS__)
#include <malloc.h>
#endif

namespace stackwatch::profiler {
namespace {

// A full table of aged stacks costs what their counts and frame ids take,
// not a copy of every frame's text: 4,096 exited processes' stacks of 24
// frames from a pool of shared library functions (module paths and names of
// real lengths, ~1.5 KiB of text a stack). The aged table was keyed by that
// text: 5,236 bytes an entry; hashed, 516.
TEST(StackTotals, AFullTableOfAgedStacksHoldsNoCopyOfTheirText) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "glibc's heap is replaced by AddressSanitizer's";
#else
  constexpr size_t kStacks = 4096, kDepth = 24, kPool = 400;
  std::vector<Frame> pool;
  for (size_t i = 0; i < kPool; ++i)
    pool.push_back(frame("stackwatch_long_library_function_name_" + std::to_string(i), 0x1000 * (i + 1),
                         "/usr/lib/x86_64-linux-gnu/libsomething-quite-long-" + std::to_string(i % 8) + ".so.1"));
  std::mt19937 rng(7);  // seeded: the same stacks every run
  auto heap = [] { return mallinfo2().uordblks; };
  size_t before = 0;
  {
    StackTotals totals(/*idle_intervals=*/1, all_alive, kStacks);
    std::vector<StackSample> interval;
    for (size_t i = 0; i < kStacks; ++i) {
      StackSample s = sample(static_cast<uint32_t>(10000 + i), static_cast<uint32_t>(10000 + i), "worker", 0,
                             StackKind::kOnCpu, 1);
      s.frames.clear();
      for (size_t d = 0; d < kDepth; ++d) s.frames.push_back(pool[rng() % kPool]);
      interval.push_back(std::move(s));
    }
    before = heap();
    std::vector<uint32_t> exited;
    for (size_t i = 0; i < kStacks; ++i) exited.push_back(static_cast<uint32_t>(10000 + i));
    totals.add(interval);
    totals.end_interval();
    totals.end_interval(exited);
    totals.end_interval();  // idle: every stack aged, keyed without its pid
    ASSERT_EQ(totals.live_size(), 0u);
    ASSERT_EQ(totals.size(), kStacks) << "distinct stacks stay apart";
    size_t per_entry = (heap() - before) / kStacks;
    std::cout << "heap per aged entry: " << per_entry << " bytes\n";
    EXPECT_LT(per_entry, 1024u);
  }
#endif
}

}  // namespace
}  // namespace stackwatch::profiler
