// Memory growth: the detector flags a steady rise, not noise or a plateau,
// and names the caller of malloc on the stack that explains the rise.
#include <gtest/gtest.h>

#include "localize/memory_growth.h"

namespace stackwatch::localize {
namespace {

Frame frame(const std::string& function, const std::string& module = "/opt/app/leaky") {
  Frame f;
  f.function = function;
  f.module = module;
  return f;
}

// An outstanding-memory level: innermost first, as the sampler reports it.
StackSample level(uint32_t tid, std::vector<std::string> path, uint64_t bytes, uint64_t count) {
  StackSample s;
  s.tgid = 100;
  s.tid = tid;
  s.process_name = "leaky";
  s.kind = StackKind::kMemory;
  s.frames.push_back(frame("malloc", "/usr/lib/x86_64-linux-gnu/libc.so.6"));
  for (auto it = path.rbegin(); it != path.rend(); ++it) s.frames.push_back(frame(*it));
  s.bytes = bytes;
  s.count = count;
  return s;
}

constexpr uint64_t kMiB = 1u << 20;
constexpr int64_t kSecond = 1'000'000'000;

std::vector<MemoryGrowth> feed(MemoryGrowthDetector& d, uint64_t i, std::vector<StackSample> levels) {
  return d.observe(i, static_cast<int64_t>(i) * kSecond, static_cast<int64_t>(i + 1) * kSecond, levels);
}

TEST(MemoryGrowth, ASteadyLeakIsFlaggedOnceWithItsAllocatingFunction) {
  MemoryGrowthDetector d;
  std::vector<MemoryGrowth> all;
  for (uint64_t i = 0; i < 10; ++i) {
    // A cache that stays at 3 MiB, split over two threads; a leak of 1 MiB a second.
    std::vector<StackSample> levels = {level(101, {"main", "serve", "cache_put"}, 2 * kMiB, 20),
                                       level(102, {"main", "serve", "cache_put"}, 1 * kMiB, 10),
                                       level(101, {"main", "tick", "leak_one_mib"}, i * kMiB, i)};
    for (auto& g : feed(d, i, levels)) all.push_back(g);
  }
  ASSERT_EQ(all.size(), 1u);  // flagged once, not every interval
  const MemoryGrowth& g = all[0];
  EXPECT_EQ(g.anomaly.interval_index, 4u);  // four rises: 0 -> 4 MiB
  EXPECT_EQ(g.anomaly.kind, "memory_growth");
  EXPECT_EQ(g.suspect, "leak_one_mib");
  EXPECT_EQ(g.path, (std::vector<std::string>{"main", "tick", "leak_one_mib"}));
  EXPECT_EQ(g.suspect_bytes, 4 * kMiB);
  EXPECT_EQ(g.suspect_allocations, 4u);
  EXPECT_DOUBLE_EQ(g.suspect_share, 1.0);
  EXPECT_EQ(g.bytes_before, 3 * kMiB);
  EXPECT_EQ(g.bytes_now, 7 * kMiB);
  EXPECT_NE(g.hint.find("leak_one_mib (called from tick): 4.0 MiB still allocated from 4 allocations"),
            std::string::npos)
      << g.hint;
  EXPECT_NE(g.hint.find("memory growth"), std::string::npos);
  nlohmann::json j = g.to_json();
  EXPECT_EQ(j["suspect"], "leak_one_mib");
  EXPECT_EQ(j["category"], "memory");
  EXPECT_EQ(j["kind"], "memory_growth");
}

TEST(MemoryGrowth, NoiseAPlateauAndSmallRisesAreNotFlagged) {
  MemoryGrowthDetector d;
  uint64_t found = 0;
  // Up and down around 8 MiB; then a plateau; then a rise of 64 KiB a step.
  const uint64_t noisy[] = {8, 9, 8, 10, 9, 8, 9, 9, 9, 9};
  uint64_t i = 0;
  for (uint64_t m : noisy) found += feed(d, i++, {level(101, {"main", "work"}, m * kMiB, 10)}).size();
  for (uint64_t k = 0; k < 8; ++k)
    found += feed(d, i++, {level(101, {"main", "work"}, 9 * kMiB + k * 65536, 10)}).size();
  EXPECT_EQ(found, 0u);
}

TEST(MemoryGrowth, ARiseAfterAFallIsFlaggedAgain) {
  MemoryGrowthDetector d;
  uint64_t found = 0, i = 0;
  for (uint64_t m = 0; m < 6; ++m) found += feed(d, i++, {level(101, {"main", "grow"}, m * kMiB, m)}).size();
  EXPECT_EQ(found, 1u);
  found += feed(d, i++, {level(101, {"main", "grow"}, 0, 0)}).size();  // freed everything
  for (uint64_t m = 1; m < 6; ++m) found += feed(d, i++, {level(101, {"main", "grow"}, m * kMiB, m)}).size();
  EXPECT_EQ(found, 2u);
}

TEST(MemoryGrowth, TheAllocatorAndOperatorNewAreSkippedToReachTheCaller) {
  EXPECT_TRUE(is_allocator_frame(frame("malloc", "/usr/lib/x86_64-linux-gnu/libc.so.6")));
  EXPECT_TRUE(is_allocator_frame(frame("operator new(unsigned long)", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6")));
  EXPECT_TRUE(is_allocator_frame(frame("_int_malloc", "/usr/lib/x86_64-linux-gnu/libc.so.6")));
  EXPECT_FALSE(is_allocator_frame(frame("leak_one_mib")));
  EXPECT_FALSE(is_allocator_frame(frame("std::vector<int>::push_back", "/opt/app/leaky")));
}

}  // namespace
}  // namespace stackwatch::localize

namespace stackwatch::localize {
namespace {

TEST(MemoryGrowth, SmallDipsOfBalancedFreesDoNotFlagTheSameLeakAgain) {
  MemoryGrowthDetector d;
  uint64_t found = 0;
  // 1 MiB a step, but every third step falls 256 KiB below the step
  // before (a batch of frees landed between two snapshots).
  for (uint64_t i = 0; i < 30; ++i) {
    uint64_t bytes = i % 3 == 2 ? (i - 1) * kMiB - kMiB / 4 : i * kMiB;
    found += feed(d, i, {level(101, {"main", "leak"}, bytes, i)}).size();
  }
  EXPECT_EQ(found, 1u);
}

}  // namespace
}  // namespace stackwatch::localize
