// Root-cause hints: categories from kernel paths and states, the short
// path, and the sentence and record from a suspect, with and without probes.
#include "localize/root_cause_hint.h"

#include <gtest/gtest.h>

#include "synthetic_stacks.h"

namespace stackwatch::localize {
namespace {

using namespace testing;

std::vector<std::string> names(const std::vector<Frame>& frames) {
  std::vector<std::string> out;
  for (const Frame& f : frames) out.push_back(f.function);
  return out;
}

TEST(ClassifyBlocked, KernelPathsGiveTheCategory) {
  using S = OffCpuState;
  EXPECT_EQ(classify_blocked("fdatasync", names(fdatasync_kernel_path()), S::kUninterruptible), CauseCategory::kDiskIo);
  EXPECT_EQ(classify_blocked("read", {"do_syscall_64", "ksys_read", "filemap_read", "folio_wait_bit_common", "io_schedule"},
                             S::kUninterruptible),
            CauseCategory::kDiskIo);
  EXPECT_EQ(classify_blocked("__lll_lock_wait", {"do_syscall_64", "__x64_sys_futex", "do_futex", "futex_wait", "schedule"},
                             S::kInterruptible),
            CauseCategory::kLockContention);
  EXPECT_EQ(classify_blocked("write", {"do_syscall_64", "ksys_write", "down_write", "rwsem_down_write_slowpath", "schedule"},
                             S::kUninterruptible),
            CauseCategory::kLockContention);
  EXPECT_EQ(classify_blocked("clock_nanosleep", {"do_syscall_64", "__x64_sys_clock_nanosleep", "common_nsleep",
                                                 "hrtimer_nanosleep", "do_nanosleep", "schedule"},
                             S::kInterruptible),
            CauseCategory::kSleepTimer);
  EXPECT_EQ(classify_blocked("recv", {"do_syscall_64", "__sys_recvfrom", "sock_recvmsg", "tcp_recvmsg", "sk_wait_data", "schedule_timeout"},
                             S::kInterruptible),
            CauseCategory::kNetworkWait);
  EXPECT_EQ(classify_blocked("epoll_wait", {"do_syscall_64", "do_epoll_wait", "ep_poll", "schedule_hrtimeout_range"},
                             S::kInterruptible),
            CauseCategory::kNetworkWait);
  EXPECT_EQ(classify_blocked("memset", {"asm_exc_page_fault", "exc_page_fault", "do_user_addr_fault", "handle_mm_fault",
                                        "do_swap_page", "folio_wait_bit_common", "io_schedule"},
                             S::kUninterruptible),
            CauseCategory::kPageFaults);
  EXPECT_EQ(classify_blocked("spin", {"asm_sysvec_apic_timer_interrupt", "schedule"}, S::kRunning), CauseCategory::kCpuWait);
  EXPECT_EQ(classify_blocked("read", {"do_syscall_64", "ksys_read", "pipe_read", "schedule"}, S::kInterruptible),
            CauseCategory::kOtherWait);
  EXPECT_EQ(classify_blocked("ioctl", {"do_syscall_64", "some_driver_wait", "schedule"}, S::kUninterruptible),
            CauseCategory::kDiskIo);
}

TEST(ShortKernelPath, LeavesOutEntryAndSchedulerPlumbing) {
  EXPECT_EQ(short_kernel_path("fdatasync", names(fdatasync_kernel_path())),
            "fdatasync -> ext4_sync_file -> jbd2_log_wait_commit");
  EXPECT_EQ(short_kernel_path("clock_nanosleep", {"entry_SYSCALL_64_after_hwframe", "do_syscall_64",
                                                  "__x64_sys_clock_nanosleep", "common_nsleep", "hrtimer_nanosleep",
                                                  "do_nanosleep", "schedule", "__schedule"}),
            "clock_nanosleep -> common_nsleep -> do_nanosleep");
  EXPECT_EQ(short_kernel_path("read", {"do_syscall_64", "ksys_read", "vfs_read"}), "read -> vfs_read");
  EXPECT_EQ(short_kernel_path("f", {}), "f");
  // No user frame (a probe's kernel stack): the system call names the path.
  EXPECT_EQ(short_kernel_path("", names(fdatasync_kernel_path())), "fdatasync -> ext4_sync_file -> jbd2_log_wait_commit");
  EXPECT_EQ(short_kernel_path("", {"asm_sysvec_apic_timer_interrupt", "irqentry_exit_to_user_mode", "schedule"}),
            "irqentry_exit_to_user_mode");
}

Suspect disk_suspect() {
  Suspect s;
  s.process = "app";
  s.tgid = 100;
  s.function = {"app", "handle_request"};
  s.module_path = "/opt/app/bin/app";
  s.probeable = true;
  s.share = 0.97;
  s.baseline_on = 0.01;
  s.anomaly_on = 0.01;
  constexpr size_t kUnint = static_cast<size_t>(OffCpuState::kUninterruptible);
  s.baseline_off[kUnint] = 0.01;
  s.anomaly_off[kUnint] = 0.8;
  BlockedEvidence e;
  e.user_frame = "fdatasync";
  e.kernel_frames = names(fdatasync_kernel_path());
  e.baseline[kUnint] = 0.01;
  e.anomaly[kUnint] = 0.8;
  s.blocked.push_back(e);
  return s;
}

TEST(MakeHint, DiskStallFromStacksAlone) {
  Hint h = make_hint(disk_suspect());
  EXPECT_EQ(h.category, CauseCategory::kDiskIo);
  EXPECT_EQ(h.sentence,
            "handle_request: 97% of the change in app; off CPU 800 ms/s (baseline 10 ms/s), 100% of the growth "
            "blocked (uninterruptible) in fdatasync -> ext4_sync_file -> jbd2_log_wait_commit: the process waits on "
            "disk I/O");
  EXPECT_EQ(h.record["category"], "disk_io");
  EXPECT_EQ(h.record["state"], "uninterruptible");
  EXPECT_EQ(h.record["function"], "handle_request");
  EXPECT_EQ(h.record["suspect"]["blocked_s_per_s"]["anomaly"]["uninterruptible"], 0.8);
}

TEST(MakeHint, CpuLoopFromStacksAlone) {
  Suspect s;
  s.process = "app";
  s.function = {"app", "slow_fn"};
  s.share = 0.99;
  s.baseline_on = 0.02;
  s.anomaly_on = 0.82;
  Hint h = make_hint(s);
  EXPECT_EQ(h.category, CauseCategory::kCpuBound);
  EXPECT_EQ(h.sentence,
            "slow_fn: 99% of the change in app; on CPU 820 ms/s (baseline 20 ms/s): the function is CPU-bound (a hot "
            "or runaway loop)");
}

FunctionLatency probe(double on, double blocked) {
  FunctionLatency p;
  p.function = "handle_request";
  p.module = "/opt/app/bin/app";
  p.seconds = 4;
  p.calls = 19;
  p.p50_ns = 150'000'000;
  p.p99_ns = 210'000'000;
  p.max_ns = 230'000'000;
  p.mean_ns = 160'000'000;
  p.on_cpu_share = on;
  p.blocked_share = blocked;
  p.runqueue_share = 1 - on - blocked;
  p.voluntary_switches_per_call = 3;
  p.log2_histogram = {0, 0, 5, 14};
  return p;
}

TEST(MakeHint, ProbeDecidesBetweenCpuAndBlocked) {
  FunctionLatency cpu = probe(0.98, 0.01);
  Hint h = make_hint(disk_suspect(), &cpu);
  EXPECT_EQ(h.category, CauseCategory::kCpuBound);
  EXPECT_EQ(h.sentence,
            "handle_request: p99 210 ms (p50 150 ms, max 230 ms, 19 calls), 98% of it on CPU: the function is "
            "CPU-bound (a hot or runaway loop)");
  EXPECT_EQ(h.record["probe"]["p99_ns"], 210'000'000);

  // Blocked, the probe saw the kernel path itself.
  FunctionLatency io = probe(0.001, 0.999);
  ProbeBlockedStack b;
  b.kernel_frames = names(fdatasync_kernel_path());
  b.state = OffCpuState::kUninterruptible;
  b.ns = 3'000'000'000;
  b.events = 19;
  io.blocked.push_back(b);
  Hint d = make_hint(io);
  EXPECT_EQ(d.category, CauseCategory::kDiskIo);
  EXPECT_EQ(d.sentence,
            "handle_request: p99 210 ms (p50 150 ms, max 230 ms, 19 calls), 99.9% of it blocked (uninterruptible) in "
            "fdatasync -> ext4_sync_file -> jbd2_log_wait_commit: the process waits on disk I/O");

  // Blocked, no kernel path from the probe: the stacks' evidence names it.
  FunctionLatency bare = probe(0.02, 0.97);
  Hint s = make_hint(disk_suspect(), &bare);
  EXPECT_EQ(s.category, CauseCategory::kDiskIo);
  EXPECT_NE(s.sentence.find("97% of it blocked (uninterruptible) in fdatasync -> ext4_sync_file"), std::string::npos)
      << s.sentence;
}

// What a CI machine measured on the fixture's 5 x (write 4 KiB + fdatasync):
// more time on CPU than blocked, nearly all of it the kernel's work inside
// the system calls. Not a loop of the function's own: disk I/O.
TEST(MakeHint, TimeInSystemCallsIsTheSystemCallsCause) {
  FunctionLatency io = probe(0.552, 0.446);
  io.syscall_cpu_share = 0.50;
  io.syscalls = {{"fdatasync", 2'300'000'000, 95}, {"write", 740'000'000, 95}};  // of 19 x 160 ms = 3.04 s
  ProbeBlockedStack b;
  b.kernel_frames = names(fdatasync_kernel_path());
  b.state = OffCpuState::kUninterruptible;
  b.ns = 1'350'000'000;
  b.events = 95;
  io.blocked.push_back(b);
  Hint d = make_hint(io);
  EXPECT_EQ(d.category, CauseCategory::kDiskIo) << d.sentence;
  EXPECT_EQ(d.sentence,
            "handle_request: p99 210 ms (p50 150 ms, max 230 ms, 19 calls), 95% of it in system calls: blocked 45% "
            "(uninterruptible) in fdatasync -> ext4_sync_file -> jbd2_log_wait_commit, on CPU in the kernel 50% "
            "(fdatasync 76%, write 24%): the process waits on disk I/O");
  // The same with the stacks' evidence: the probe's split decides.
  EXPECT_EQ(make_hint(disk_suspect(), &io).category, CauseCategory::kDiskIo);

  // The function's own CPU time outweighs its system calls: CPU-bound.
  FunctionLatency own = io;
  own.on_cpu_share = 0.9;
  own.blocked_share = 0.08;
  own.syscall_cpu_share = 0.05;
  EXPECT_EQ(make_hint(own).category, CauseCategory::kCpuBound);
  EXPECT_NE(make_hint(own).sentence.find("of it on CPU:"), std::string::npos) << make_hint(own).sentence;

  // System calls that compute rather than wait (reads from the page
  // cache): the kernel's CPU work, said as such.
  FunctionLatency reads = probe(0.97, 0.01);
  reads.syscall_cpu_share = 0.9;
  reads.syscalls = {{"read", 2'700'000'000, 5000}};
  Hint r = make_hint(reads);
  EXPECT_EQ(r.category, CauseCategory::kCpuBound);
  EXPECT_EQ(r.sentence,
            "handle_request: p99 210 ms (p50 150 ms, max 230 ms, 19 calls), 91% of it in system calls: on CPU in the "
            "kernel 90% (read 89%), blocked 1.0%: the function is CPU-bound (a hot or runaway loop)");
}

TEST(MakeHint, NoCallsIsSaidPlainly) {
  FunctionLatency p = probe(0, 0);
  p.calls = 0;
  Hint h = make_hint(p);
  EXPECT_EQ(h.category, CauseCategory::kUnknown);
  EXPECT_EQ(h.sentence, "handle_request: no completed call in 4 s");
}

TEST(FunctionLatency, JsonRoundTrip) {
  FunctionLatency p = probe(0.5, 0.4);
  p.blocked.push_back({{"a", "b"}, OffCpuState::kInterruptible, 5, 1});
  p.syscall_cpu_share = 0.25;
  p.syscalls = {{"write", 7, 2}, {"fdatasync", 3, 1}};
  FunctionLatency back = function_latency_from_json(p.to_json());
  EXPECT_EQ(back.to_json(), p.to_json());
}

TEST(MakeHint, ComparesTheP99WithTheBaselineBefore) {
  FunctionLatency io = probe(0.001, 0.999);
  BaselineLatency before;
  before.measured = true;
  before.interval = 3;
  before.seconds = 1;
  before.calls = 90;
  before.p50_ns = 1'000'000;
  before.p99_ns = 2'100'000;
  before.max_ns = 3'000'000;
  before.sampled = true;
  io.baseline = before;
  EXPECT_DOUBLE_EQ(io.p99_ratio(), 100.0);
  Hint h = make_hint(disk_suspect(), &io);
  EXPECT_NE(h.sentence.find("handle_request: p99 210 ms (baseline 2.1 ms, 100x; p50 150 ms"), std::string::npos)
      << h.sentence;
  EXPECT_DOUBLE_EQ(h.record["p99_ratio"].get<double>(), 100.0);
  EXPECT_EQ(h.record["probe"]["baseline"]["p99_ns"], 2'100'000);

  // A round that saw no call: said so, and no ratio.
  before.calls = 0;
  io.baseline = before;
  EXPECT_EQ(io.p99_ratio(), 0);
  EXPECT_NE(make_hint(io).sentence.find("(no calls before: none completed in a 1.0 s probe of interval 3; p50"),
            std::string::npos)
      << make_hint(io).sentence;

  // Never probed and never in the baseline's stacks: a new path.
  BaselineLatency unseen;
  unseen.seconds = 18;
  io.baseline = unseen;
  EXPECT_NE(make_hint(io).sentence.find("(no calls before: not in any stack of the 18 s before; p50"),
            std::string::npos)
      << make_hint(io).sentence;

  // In the stacks, but no round measured it: no claim about before.
  unseen.sampled = true;
  io.baseline = unseen;
  EXPECT_NE(make_hint(io).sentence.find("(no baseline: not probed before; p50"), std::string::npos)
      << make_hint(io).sentence;

  // Same as before: no "x" factor for a change that is not one.
  before.calls = 90;
  before.p99_ns = 200'000'000;
  io.baseline = before;
  EXPECT_NE(make_hint(io).sentence.find("(baseline 200 ms; p50"), std::string::npos) << make_hint(io).sentence;
}

TEST(MakeHint, StarvedButDoingMoreWorkIsCpuBound) {
  // A spinning call on an overloaded machine: runs 20% of its time, waits
  // for a CPU 80%, and runs 40 ms per call where a whole call took 0.2 ms.
  FunctionLatency spin = probe(0.2, 0);
  spin.runqueue_share = 0.8;
  spin.mean_ns = 200'000'000;
  BaselineLatency before;
  before.measured = true;
  before.calls = 249;
  before.p50_ns = 200'000;
  before.p99_ns = 240'000;
  spin.baseline = before;
  Hint h = make_hint(disk_suspect(), &spin);
  EXPECT_EQ(h.category, CauseCategory::kCpuBound) << h.sentence;
  EXPECT_NE(h.sentence.find("20% of it on CPU (and 80% runnable, waiting for a CPU)"), std::string::npos) << h.sentence;

  // The same wait with the same work per call as before: starved, not busy.
  before.p50_ns = 50'000'000;
  spin.baseline = before;
  EXPECT_EQ(make_hint(disk_suspect(), &spin).category, CauseCategory::kCpuWait);
}

TEST(FunctionLatency, JsonRoundTripWithBaseline) {
  FunctionLatency p = probe(0.5, 0.4);
  BaselineLatency b;
  b.measured = true;
  b.interval = 13;
  b.seconds = 0.9;
  b.calls = 1523;
  b.p50_ns = 2228224;
  b.p99_ns = 48234496;
  b.max_ns = 57488079;
  b.sampled = true;
  p.baseline = b;
  FunctionLatency back = function_latency_from_json(p.to_json());
  ASSERT_TRUE(back.baseline.has_value());
  EXPECT_EQ(back.to_json(), p.to_json());
  EXPECT_TRUE(function_latency_from_json(probe(0.5, 0.4).to_json()).baseline == std::nullopt);
}

TEST(FormatDuration, Units) {
  EXPECT_EQ(format_duration_ns(23.8e9), "23.8 s");
  EXPECT_EQ(format_duration_ns(20'000), "20 us");
  EXPECT_EQ(format_duration_ns(850), "850 ns");
  EXPECT_EQ(format_duration_ns(1.5e6), "1.5 ms");
}

}  // namespace
}  // namespace stackwatch::localize
