// Choosing what a baseline latency round probes: the busiest processes, and
// in one the probeable functions where it spends its CPU and disk time
// first, its other waits after; never libc, the kernel or inlined code.
#include "localize/baseline_candidates.h"

#include <gtest/gtest.h>

#include "synthetic_stacks.h"

namespace stackwatch::localize {
namespace {

using namespace testing;

std::vector<std::string> names(const std::vector<Suspect>& s) {
  std::vector<std::string> out;
  for (const Suspect& x : s) out.push_back(x.function.name);
  return out;
}

// A server: main -> serve -> {handle (CPU), flush -> fdatasync (disk)},
// and an idle thread waiting on a condition variable for most of the time.
std::vector<StackSample> server(uint32_t tgid = 100, const std::string& name = "app") {
  std::vector<StackSample> s;
  s.push_back(on_cpu(path({user("main"), user("serve"), user("handle"), inlined("parse")}), 40, name, tgid));
  s.push_back(on_cpu(path({user("main"), user("serve"), user("handle"), libc("memcpy")}), 10, name, tgid));
  s.push_back(off_cpu(with_kernel({user("main"), user("serve"), user("flush"), libc("fdatasync")}, fdatasync_kernel_path()),
                      300'000'000, OffCpuState::kUninterruptible, 30, name, tgid));
  s.push_back(off_cpu(path({user("idle_loop"), libc("pthread_cond_wait"), kern("futex_wait")}), 5'000'000'000,
                      OffCpuState::kInterruptible, 5, name, tgid));
  return s;
}

TEST(BaselineCandidates, BusyAndDiskTimeFirstThenOtherWaits) {
  auto c = baseline_candidates(server(), 5, 100, 100, 8);
  // Busy rates over 5 s at 100 Hz: main and serve 0.16 s/s (0.1 on CPU +
  // 0.06 on the disk; a tie, by name), handle 0.1 (memcpy and the inlined
  // parse are its own), flush 0.06; idle_loop only waits (1 s/s).
  EXPECT_EQ(names(c), (std::vector<std::string>{"main", "serve", "handle", "flush", "idle_loop"}));
  for (const Suspect& s : c) {
    EXPECT_TRUE(s.probeable);
    EXPECT_EQ(s.tgid, 100u);
    EXPECT_EQ(s.process, "app");
    EXPECT_EQ(s.module_path, "/opt/app/bin/app");
  }
  EXPECT_GT(c[2].score, c[3].score);
}

TEST(BaselineCandidates, ExcludedAndMaxAreHonoured) {
  auto c = baseline_candidates(server(), 5, 100, 100, 2, {"app!main"});
  EXPECT_EQ(names(c), (std::vector<std::string>{"serve", "handle"}));
  EXPECT_TRUE(baseline_candidates(server(), 5, 999, 100, 8).empty()) << "another process";
}

TEST(BaselineCandidates, IgnoresStacksThatAreNotTime) {
  auto stacks = server();
  StackSample mem = on_cpu(path({user("main"), user("allocate_everything")}), 1'000'000);
  mem.kind = StackKind::kMemory;
  stacks.push_back(mem);
  auto c = baseline_candidates(stacks, 5, 100, 100, 8);
  for (const Suspect& s : c) EXPECT_NE(s.function.name, "allocate_everything");
  EXPECT_FALSE(sampled_in({mem}, 100, FunctionId{"app", "allocate_everything"}));
}

TEST(BusiestProcesses, DemandNotIdleWaits) {
  auto stacks = server(100, "app");
  // A daemon with 40 idle threads: lots of interruptible sleep, no demand.
  for (uint32_t t = 0; t < 40; ++t)
    stacks.push_back(off_cpu(path({user("worker", "/usr/sbin/daemon"), libc("epoll_wait")}), 5'000'000'000,
                             OffCpuState::kInterruptible, 1, "daemon", 200));
  stacks.push_back(on_cpu(path({user("tick", "/usr/bin/other")}), 5, "other", 300));
  EXPECT_EQ(busiest_processes(stacks, 100, 3), (std::vector<uint32_t>{100, 300, 200}));
  EXPECT_EQ(busiest_processes(stacks, 100, 1), (std::vector<uint32_t>{100}));
}

TEST(SampledIn, FindsUserFramesOfTheProcessOnly) {
  auto stacks = server();
  EXPECT_TRUE(sampled_in(stacks, 100, FunctionId{"app", "flush"}));
  EXPECT_FALSE(sampled_in(stacks, 100, FunctionId{"app", "rebuild_index"}));
  EXPECT_FALSE(sampled_in(stacks, 101, FunctionId{"app", "flush"}));
}

}  // namespace
}  // namespace stackwatch::localize
