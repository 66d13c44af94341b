// The memory and I/O folded views of record --memory / --io: which entries
// each view takes, their weights, and the I/O leaf that says what the I/O was.
#include <gtest/gtest.h>

#include "profiler/stack_totals.h"

namespace stackwatch::profiler {
namespace {

StackSample entry(StackKind kind, const std::string& fn, const std::string& detail, uint64_t count, uint64_t bytes,
                  uint64_t latency_ns = 0) {
  StackSample s;
  s.tgid = 7;
  s.tid = 7;
  s.process_name = "app";
  s.kind = kind;
  Frame leaf, main;
  leaf.function = fn;
  main.function = "main";
  s.frames = {leaf, main};
  s.count = count;
  s.bytes = bytes;
  s.latency_ns = latency_ns;
  s.detail = detail;
  return s;
}

std::vector<std::string> lines(const std::vector<flamegraph::FoldedStack>& folded) {
  std::vector<std::string> out;
  for (const auto& f : folded) {
    std::string l;
    for (const auto& fr : f.frames) l += (l.empty() ? "" : ";") + fr;
    out.push_back(l + " " + std::to_string(f.weight));
  }
  return out;
}

TEST(ResourceViews, EachViewTakesItsOwnEntriesWithItsOwnWeight) {
  std::vector<StackSample> all = {
      entry(StackKind::kOnCpu, "spin", "", 5, 0),
      entry(StackKind::kMemory, "leak", "", 3, 3 << 20),
      entry(StackKind::kMemory, "touch", kPageFaultDetail, 40, 0),
      entry(StackKind::kMemory, "bad", "double-free", 1, 0),
      entry(StackKind::kIo, "write_data", "write file", 100, 100 << 20, 5000000),
      entry(StackKind::kIo, "write_data", "write pipe", 10, 4096),
      entry(StackKind::kIo, "flush", "block write", 8, 1 << 20, 16000000),
  };
  EXPECT_EQ(lines(to_folded(all, FoldedWeight::kMemoryBytes)), (std::vector<std::string>{"app;main;leak 3145728"}));
  EXPECT_EQ(lines(to_folded(all, FoldedWeight::kPageFaults)), (std::vector<std::string>{"app;main;touch 40"}));
  EXPECT_EQ(lines(to_folded(all, FoldedWeight::kIoBytes)),
            (std::vector<std::string>{"app;main;write_data;[write file] 104857600",
                                      "app;main;write_data;[write pipe] 4096"}));
  EXPECT_EQ(lines(to_folded(all, FoldedWeight::kBlockIoMicros)),
            (std::vector<std::string>{"app;main;flush;[block write] 16000"}));
  // The CPU views are unchanged by memory and I/O entries.
  EXPECT_EQ(lines(to_folded(all, FoldedWeight::kSamples)), (std::vector<std::string>{"app;main;spin 5"}));
  EXPECT_EQ(lines(to_folded(all, FoldedWeight::kWallMicros, 1000)), (std::vector<std::string>{"app;main;spin 5000"}));
}

TEST(ResourceViews, TotalsSumIoBytesAndKeepDetailsApart) {
  StackTotals totals;
  totals.add({entry(StackKind::kIo, "write_data", "write file", 10, 1000, 50)});
  totals.add({entry(StackKind::kIo, "write_data", "write file", 5, 500, 25),
              entry(StackKind::kIo, "write_data", "write socket", 1, 7)});
  std::vector<StackSample> s = totals.stacks();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].detail, "write file");
  EXPECT_EQ(s[0].count, 15u);
  EXPECT_EQ(s[0].bytes, 1500u);
  EXPECT_EQ(s[0].latency_ns, 75u);
  EXPECT_EQ(s[1].detail, "write socket");
}

}  // namespace
}  // namespace stackwatch::profiler
