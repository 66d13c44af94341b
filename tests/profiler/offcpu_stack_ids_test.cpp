// OffCpuStackIds: the off-CPU stack maps are recycled in turn, an id taken
// before its map was recycled still reads its own stack, the copies kept for
// sleeping threads are bounded by what is still referenced, and the tags
// never name two generations at once.
#include "profiler/offcpu_stack_ids.h"

#include <gtest/gtest.h>

#include <map>

namespace stackwatch::profiler {
namespace {

// Two fake stack maps whose ids are bucket numbers as in the kernel: the
// same id means a different stack once the map was emptied.
class FakeMaps : public OffCpuStackIds::StackMaps {
 public:
  std::vector<std::pair<uint32_t, std::vector<uint64_t>>> take_all(int slot) override {
    std::vector<std::pair<uint32_t, std::vector<uint64_t>>> out(maps[slot].begin(), maps[slot].end());
    maps[slot].clear();
    ++emptied[slot];
    return out;
  }
  bool lookup(int slot, uint32_t id, std::vector<uint64_t>& ips) const override {
    auto it = maps[slot].find(id);
    if (it == maps[slot].end()) return false;
    ips = it->second;
    return true;
  }
  std::map<uint32_t, std::vector<uint64_t>> maps[2];
  int emptied[2] = {0, 0};
};

constexpr uint32_t kIdBits = 8;

// What BPF does at a switch-out: the stack goes into the map of the
// current tag, the id stored is tagged.
int32_t take(FakeMaps& maps, const OffCpuStackIds& ids, uint32_t bucket, std::vector<uint64_t> ips) {
  maps.maps[ids.tag() & 1][bucket] = std::move(ips);
  return static_cast<int32_t>((ids.tag() << kIdBits) | bucket);
}

std::vector<uint64_t> read(const OffCpuStackIds& ids, int32_t id) {
  std::vector<uint64_t> ips;
  EXPECT_TRUE(ids.read(id, ips)) << "id " << id;
  return ips;
}

TEST(OffCpuStackIds, ASleepersIdReadsItsOwnStackAfterItsMapWasRecycledAndTheBucketReused) {
  FakeMaps maps;
  OffCpuStackIds ids(kIdBits, maps);
  int32_t sleeper = take(maps, ids, 5, {0x1, 0x2});  // a thread blocks for many intervals
  for (int interval = 0; interval < 10; ++interval) {
    ids.recycle();
    // Others take bucket 5 with other stacks in the recycled maps.
    int32_t other = take(maps, ids, 5, {0x100u + interval});
    EXPECT_EQ(read(ids, other), (std::vector<uint64_t>{0x100u + static_cast<uint64_t>(interval)}));
    EXPECT_EQ(read(ids, sleeper), (std::vector<uint64_t>{0x1, 0x2})) << "interval " << interval;
    ids.keep_referenced({sleeper, other});
  }
  EXPECT_GE(maps.emptied[0], 4);
  EXPECT_GE(maps.emptied[1], 4);
  // Only what is referenced is kept: the sleeper, and the last others whose
  // maps were recycled, not one copy per interval.
  EXPECT_LE(ids.copied_stacks(), 3u);
}

TEST(OffCpuStackIds, CopiesNoLongerReferencedAreDroppedAfterTwoScans) {
  FakeMaps maps;
  OffCpuStackIds ids(kIdBits, maps);
  int32_t a = take(maps, ids, 1, {0xa});
  int32_t b = take(maps, ids, 2, {0xb});
  ids.recycle();  // a and b's map is still live (the previous tag)
  ids.keep_referenced({a, b});
  ids.recycle();  // now copied
  EXPECT_EQ(ids.copied_stacks(), 2u);
  ids.keep_referenced({a});  // b woke up and was drained
  EXPECT_EQ(ids.copied_stacks(), 2u) << "one scan without b is not enough: it may be on its way";
  ids.recycle();
  ids.keep_referenced({a});
  EXPECT_EQ(ids.copied_stacks(), 1u);
  EXPECT_EQ(read(ids, a), std::vector<uint64_t>{0xa});
  std::vector<uint64_t> ips;
  EXPECT_FALSE(ids.read(b, ips));
  ids.keep_referenced({});
  ids.keep_referenced({});
  EXPECT_EQ(ids.copied_stacks(), 0u);
  EXPECT_EQ(ids.recycled_stacks(), 2u);
}

TEST(OffCpuStackIds, TagsAlternateMapsAndSkipTagsStillHeldByCopies) {
  FakeMaps maps;
  OffCpuStackIds ids(/*id_bits=*/28, maps);  // 8 tags
  ASSERT_EQ(ids.max_tags(), 8u);
  int32_t sleeper = take(maps, ids, 3, {0x5});
  uint32_t sleeper_tag = ids.tag();
  uint32_t previous = ids.tag();
  for (int interval = 0; interval < 40; ++interval) {
    uint32_t tag = ids.recycle();
    EXPECT_NE(tag & 1, previous & 1) << "each flip moves to the other map";
    if (interval > 0) {
      EXPECT_NE(tag, sleeper_tag) << "a held tag is never handed out again";
    }
    previous = tag;
    ids.keep_referenced({sleeper});
    EXPECT_EQ(read(ids, sleeper), std::vector<uint64_t>{0x5});
  }
}

TEST(OffCpuStackIds, NegativeIdsHaveNoStack) {
  FakeMaps maps;
  OffCpuStackIds ids(kIdBits, maps);
  std::vector<uint64_t> ips = {1};
  EXPECT_FALSE(ids.read(-14, ips));  // -EFAULT: no user stack
  EXPECT_TRUE(ips.empty());
}

}  // namespace
}  // namespace stackwatch::profiler
