// attribute_copy_fallbacks: I/O calls the kernel counted under their
// frame-pointer stacks (the copy ring was full) go to the copied stacks of
// the same thread and operation sharing their innermost frames.
#include "profiler/copy_fallback.h"

#include <gtest/gtest.h>

namespace stackwatch::profiler {
namespace {

RawStack call(uint32_t tid, const std::string& detail, std::vector<uint64_t> ips, uint64_t count, uint64_t bytes,
              uint64_t ns, bool unwound) {
  RawStack r;
  r.kind = StackKind::kIo;
  r.key.tgid = 100;
  r.key.tid = tid;
  r.key.user_stack_id = unwound ? -1 : 7;
  r.user_ips = std::move(ips);
  r.value.count = count;
  r.bytes = bytes;
  r.latency_ns = ns;
  r.detail = detail;
  r.unwound = unwound;
  return r;
}

uint64_t sum_count(const std::vector<RawStack>& v) {
  uint64_t n = 0;
  for (const auto& r : v) n += r.value.count;
  return n;
}

TEST(CopyFallback, SplitsByCopiedCallsAmongTheLongestSharedPrefix) {
  // Copies: write site 0x10, caller 0x20, then two different outer stacks
  // (3 and 1 calls); a third copy with another caller.
  std::vector<RawStack> v;
  v.push_back(call(1, "write file", {0x10, 0x20, 0x30, 0x40}, 3, 300, 30, true));
  v.push_back(call(1, "write file", {0x10, 0x20, 0x31, 0x41}, 1, 100, 10, true));
  v.push_back(call(1, "write file", {0x10, 0x21, 0x30}, 5, 500, 50, true));
  // The fallback: the frame-pointer walk lost everything above the caller
  // (0xdead is a garbage frame).
  v.push_back(call(1, "write file", {0x10, 0x20, 0xdead}, 401, 40100, 4010, false));
  EXPECT_EQ(attribute_copy_fallbacks(v), 1u);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(sum_count(v), 3u + 1 + 5 + 401);
  // 401 calls split 3:1 -> 300 and 100, the remainder to the heavier.
  EXPECT_EQ(v[0].value.count, 3u + 301);
  EXPECT_EQ(v[1].value.count, 1u + 100);
  EXPECT_EQ(v[0].bytes + v[1].bytes, 400u + 40100);
  EXPECT_EQ(v[0].latency_ns + v[1].latency_ns, 40u + 4010);
  EXPECT_EQ(v[2].value.count, 5u) << "another caller: nothing given";
}

TEST(CopyFallback, PrefersTheCopiesSharingMoreFrames) {
  std::vector<RawStack> v;
  v.push_back(call(1, "read file", {0x10, 0x20, 0x30, 0x40}, 2, 2, 2, true));
  v.push_back(call(1, "read file", {0x10, 0x20, 0x31}, 8, 8, 8, true));
  v.push_back(call(1, "read file", {0x10, 0x20, 0x30, 0x99}, 10, 10, 10, false));
  attribute_copy_fallbacks(v);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].value.count, 12u) << "three frames shared beat two";
  EXPECT_EQ(v[1].value.count, 8u);
}

TEST(CopyFallback, LeavesWhatNoCopyExplains) {
  std::vector<RawStack> v;
  v.push_back(call(1, "write file", {0x10, 0x20, 0x30}, 1, 1, 1, true));
  v.push_back(call(2, "write file", {0x10, 0x20}, 4, 4, 4, false));      // another thread
  v.push_back(call(1, "read file", {0x10, 0x20}, 4, 4, 4, false));       // another operation
  v.push_back(call(1, "write file", {0x10, 0x22}, 4, 4, 4, false));      // only the site shared
  v.push_back(call(1, "block write", {0x10, 0x20}, 4, 4, 4, false));     // block requests stay
  RawStack cpu = call(1, "", {0x10, 0x20}, 4, 0, 0, false);
  cpu.kind = StackKind::kOnCpu;
  v.push_back(cpu);
  EXPECT_EQ(attribute_copy_fallbacks(v), 0u);
  EXPECT_EQ(v.size(), 6u);
  EXPECT_EQ(v[0].value.count, 1u);
}

TEST(CopyFallback, PageFaultsNeedOnlyTheFaultingInstruction) {
  auto fault = [](std::vector<uint64_t> ips, uint64_t count, bool unwound) {
    RawStack r = call(1, "page-fault", std::move(ips), count, 0, 0, unwound);
    r.kind = StackKind::kMemory;
    return r;
  };
  std::vector<RawStack> v;
  v.push_back(fault({0x10, 0x20, 0x30}, 1, true));
  v.push_back(fault({0x10, 0x21, 0x30}, 3, true));
  v.push_back(fault({0x10, 0xdead}, 8, false));  // nothing but the ip is right
  v.push_back(fault({0x11}, 5, false));          // another instruction: stays
  RawStack outstanding = fault({0x10}, 9, false);
  outstanding.detail = "";  // an allocating stack's level: never moved
  v.push_back(outstanding);
  EXPECT_EQ(attribute_copy_fallbacks(v), 1u);
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v[0].value.count, 1u + 2);
  EXPECT_EQ(v[1].value.count, 3u + 6);
  EXPECT_EQ(v[2].value.count, 5u);
  EXPECT_EQ(v[3].value.count, 9u);
}

TEST(CopyFallback, NoCopiesNoChange) {
  std::vector<RawStack> v;
  v.push_back(call(1, "write file", {0x10, 0x20}, 4, 4, 4, false));
  EXPECT_EQ(attribute_copy_fallbacks(v), 0u);
  EXPECT_EQ(v.size(), 1u);
}

}  // namespace
}  // namespace stackwatch::profiler
