// The output files written from the totals: stacks.json is what the totals
// hold (every stack, frames included, in their order) plus the outstanding
// memory, exactly as the whole-document writer would have written it; and
// the heap's free pages go back to the kernel after an interval.
#include "profiler/record_outputs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "recording/stacks_json.h"

namespace fs = std::filesystem;

namespace stackwatch::profiler {
namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

StackSample sample(uint32_t tgid, uint32_t tid, StackKind kind, uint64_t count, const std::string& leaf) {
  StackSample s;
  s.tgid = tgid;
  s.tid = tid;
  s.process_name = "app" + std::to_string(tgid);
  s.thread_name = "t" + std::to_string(tid);
  s.kind = kind;
  s.count = count;
  if (kind == StackKind::kOffCpu) {
    s.off_ns = count * 1000;
    s.off_state = OffCpuState::kInterruptible;
  }
  Frame k;
  k.address = 0xffffffff81000000ULL + count;
  k.function = "schedule";
  k.module = "[kernel]";
  k.kernel = true;
  Frame u;
  u.address = 0x401000 + tid;
  u.function = leaf;
  u.module = "/usr/bin/app";
  u.module_offset = 0x1000 + tid;
  u.file = "app.c";
  u.line = tid;
  s.frames = {k, u};
  return s;
}

long rss_kb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

class RecordOutputs : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sw_outputs_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(RecordOutputs, StacksJsonHoldsTheTotalsAndTheMemoryLevels) {
  StackTotals totals(StackTotals::kIdleIntervals, [](uint32_t) { return true; });
  std::vector<StackSample> interval;
  for (uint32_t tid = 1; tid <= 12; ++tid)
    interval.push_back(sample(tid % 2 ? 9 : 10, tid, tid % 3 ? StackKind::kOnCpu : StackKind::kOffCpu, tid, "work"));
  totals.add(interval);
  totals.add(interval);  // summed into the same entries
  totals.end_interval();
  StackSample leak = sample(10, 10, StackKind::kMemory, 3, "leak");
  leak.bytes = 3 << 20;
  RecordInfo info;
  info.started_at = "2026-11-23T20:00:00Z";
  info.elapsed_s = 5;
  info.intervals = 1;
  info.hz = 49;
  info.event_name = "cpu-clock";
  info.memory = true;
  write_outputs(dir_.string(), totals, info, /*final=*/false, {leak});

  std::vector<StackSample> expected = totals.stacks();
  expected.push_back(leak);
  StacksFileMeta meta;
  meta.started_at = info.started_at;
  meta.duration_s = info.elapsed_s;
  meta.intervals = info.intervals;
  meta.sample_hz = info.hz;
  meta.sampling_event = info.event_name;
  meta.drops = totals.drops;
  meta.extra = info.extra;
  EXPECT_EQ(slurp(dir_ / "stacks.json"), stacks_to_json(expected, meta).dump(1) + "\n");
  std::vector<StackSample> back = stacks_from_json(nlohmann::json::parse(slurp(dir_ / "stacks.json")));
  ASSERT_EQ(back.size(), 13u);
  uint64_t on = 0;
  for (const StackSample& s : back) {
    if (s.kind == StackKind::kOnCpu) on += s.count;
    if (s.kind != StackKind::kMemory) {
      ASSERT_EQ(s.frames.size(), 2u);
      EXPECT_EQ(s.frames[1].line, s.tid);  // each stack's own frames, not another's
    }
  }
  EXPECT_EQ(on, 2u * (1 + 2 + 4 + 5 + 7 + 8 + 10 + 11));
  EXPECT_EQ(slurp(dir_ / "memory.folded"), "app10;leak;schedule_[k] 3145728\n");
}

// A heap left fragmented (most of it freed, a small block kept in every
// 64 KiB) keeps its RSS until the free pages inside it are given back.
TEST_F(RecordOutputs, FreePagesOfAFragmentedHeapAreGivenBack) {
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer replaces glibc's malloc (malloc_trim does nothing
  // there); the plain unit run checks this.
  GTEST_SKIP() << "glibc's heap is replaced by AddressSanitizer's";
#endif
  constexpr size_t kBlocks = 64 * 1024;  // 64 KiB blocks of 1 KiB: 64 MiB
  std::vector<std::unique_ptr<char[]>> blocks(kBlocks);
  for (auto& b : blocks) {
    b = std::make_unique<char[]>(1000);
    std::fill(b.get(), b.get() + 1000, 'x');
  }
  for (size_t i = 0; i < kBlocks; ++i)
    if (i % 64 != 0) blocks[i].reset();  // every 64th kept: nothing coalesces to the top
  long before = rss_kb();
  release_free_heap();
  long after = rss_kb();
  EXPECT_GT(before - after, 32 * 1024) << "RSS before " << before << " KiB, after " << after << " KiB";
}

}  // namespace
}  // namespace stackwatch::profiler
