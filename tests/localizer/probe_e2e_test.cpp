// `stackwatch probe` end to end (root, real uprobes) on a fixture whose
// handle_request() jumps from ~20 us to a slow variant on SIGUSR1: one
// probe window before the signal, one after. The report must show the
// jump (p99 after >= 10x before), where the time went (blocked for the
// fsync variant, on CPU for the spin variant), and no probe of ours may
// remain once the command has exited, however it exited. And the whole
// localizer on real recordings: rank, plan probes, probe, hint.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "localize/root_cause_hint.h"
#include "localize/suspect_ranking.h"
#include "profiler/latency_probes.h"
#include "recording/stacks_json.h"

namespace stackwatch::localize {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Child {
  pid_t pid = -1;
  int out = -1, err = -1;
};

struct Result {
  int exit_code = -1;
  int signal = 0;
  std::string out, err;
};

Child spawn(const std::vector<std::string>& argv, bool capture) {
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  if (capture && (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)) return {};
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(capture ? out[1] : null, 1);
    dup2(capture ? err[1] : null, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  Child c;
  c.pid = pid;
  if (capture) {
    close(out[1]);
    close(err[1]);
    c.out = out[0];
    c.err = err[0];
  }
  return c;
}

Result finish(Child& c, double timeout_s) {
  Result r;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (c.out >= 0 || c.err >= 0) {
    pollfd fds[2] = {{c.out, POLLIN, 0}, {c.err, POLLIN, 0}};
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
    if (left <= 0) {
      kill(c.pid, SIGKILL);
      break;
    }
    if (poll(fds, 2, left) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
      char buf[4096];
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        (i == 0 ? c.out : c.err) = -1;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  int status = 0;
  waitpid(c.pid, &status, 0);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

Result run(const std::vector<std::string>& argv, double timeout_s) {
  Child c = spawn(argv, true);
  return finish(c, timeout_s);
}

std::string shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// Our probes as the kernel lists them: uprobe perf events on the fixture
// file, and our BPF programs (by name).
size_t our_uprobes() {
  std::string list = shell("bpftool perf list 2>/dev/null");
  size_t n = 0, at = 0;
  while ((at = list.find(LATENCY_SWITCH_FIXTURE, at)) != std::string::npos) ++n, ++at;
  return n;
}
size_t count_our_programs() {
  std::string list = shell("bpftool prog list 2>/dev/null");
  size_t n = 0;
  for (const char* name : {"lat_entry", "lat_return", "lat_switch", "lat_sys_enter", "lat_sys_exit"})
    for (size_t at = 0; (at = list.find(name, at)) != std::string::npos; ++at) ++n;
  return n;
}
// The kernel frees a program shortly after its last fd and link are gone
// (deferred work, after an RCU grace period): measured here, 2 of them were
// still listed right after `stackwatch probe` exited and none 100 ms later.
// Up to 3 s for that; one still there then was not let go.
size_t our_programs() {
  size_t n = count_our_programs();
  for (int i = 0; i < 30 && n > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    n = count_our_programs();
  }
  return n;
}

class ProbeE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (uprobes, BPF)";
    dir_ = fs::temp_directory_path() / ("probe_e2e_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (fixture_ > 0) {
      kill(fixture_, SIGKILL);
      waitpid(fixture_, nullptr, 0);
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  void start_fixture(const std::string& mode) {
    // /var/tmp is on the disk (fdatasync must reach the block layer).
    Child c = spawn({LATENCY_SWITCH_FIXTURE, mode, "/var/tmp"}, false);
    fixture_ = c.pid;
    std::this_thread::sleep_for(300ms);
    ASSERT_EQ(kill(fixture_, 0), 0);
  }

  FunctionLatency probe_window(int seconds, const std::string& name) {
    std::string json = (dir_ / (name + ".json")).string();
    Result r = run({STACKWATCH_BIN, "probe", "-p", std::to_string(fixture_), "handle_request", "-d",
                    std::to_string(seconds), "-o", json},
                   seconds + 30);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::cout << r.out;
    EXPECT_NE(r.out.find("handle_request"), std::string::npos);
    EXPECT_NE(r.out.find("p99"), std::string::npos);
    std::ifstream in(json);
    nlohmann::json doc = nlohmann::json::parse(in, nullptr, false);
    if (doc.is_discarded() || !doc.contains("functions") || doc["functions"].empty()) {
      ADD_FAILURE() << "no JSON report in " << json;
      return {};
    }
    return function_latency_from_json(doc["functions"][0]);
  }

  fs::path dir_;
  pid_t fixture_ = -1;
};

TEST_F(ProbeE2E, FsyncVariantIsSlowAndBlockedOnDisk) {
  start_fixture("fsync");
  FunctionLatency before = probe_window(3, "before");
  EXPECT_EQ(our_uprobes(), 0u);
  kill(fixture_, SIGUSR1);
  FunctionLatency after = probe_window(4, "after");
  EXPECT_EQ(our_uprobes(), 0u);
  EXPECT_EQ(our_programs(), 0u);

  // ~2 ms apart: hundreds of calls before; each slow call is 5 fdatasyncs.
  EXPECT_GT(before.calls, 300u);
  EXPECT_GE(after.calls, 5u);
  EXPECT_GT(before.p99_ns, 10'000u);  // 20 us of work
  EXPECT_GE(after.p99_ns, 10 * before.p99_ns);
  EXPECT_GE(after.max_ns, after.p99_ns);
  // Nearly all of a slow call is in its system calls: blocked on the disk,
  // or on CPU in ext4 and the block layer. How it splits depends on the
  // disk: 63% blocked and 34% kernel CPU here, 45% and ~50% on a CI machine.
  EXPECT_GT(after.blocked_share + after.syscall_cpu_share, 0.8)
      << "blocked " << after.blocked_share << ", in system calls on CPU " << after.syscall_cpu_share;
  EXPECT_GT(after.blocked_share, 0.2);
  EXPECT_GT(before.on_cpu_share + before.runqueue_share, 0.8);
  EXPECT_LT(before.syscall_cpu_share, 0.1);  // the 20 us of arithmetic (clock_gettime is the vDSO's)
  auto syscall_calls = [&](const std::string& name) -> uint64_t {
    for (const auto& c : after.syscalls)
      if (c.name == name) return c.calls;
    return 0;
  };
  // 5 of each per slow call (a call cut by the window's ends counts partly).
  EXPECT_GE(syscall_calls("fdatasync"), 5 * after.calls - 5);
  EXPECT_GE(syscall_calls("write"), 5 * after.calls - 5);
  ASSERT_FALSE(after.syscalls.empty());
  EXPECT_EQ(after.syscalls[0].name, "fdatasync");  // the flush costs more CPU than copying 4 KiB
  EXPECT_GE(after.voluntary_switches_per_call, 1.0);  // it sleeps in every slow call
  ASSERT_FALSE(after.blocked.empty());
  EXPECT_EQ(after.blocked[0].state, OffCpuState::kUninterruptible);
  Hint h = make_hint(after);
  EXPECT_EQ(h.category, CauseCategory::kDiskIo) << h.sentence;
  std::cout << "hint: " << h.sentence << "\n";
}

TEST_F(ProbeE2E, SpinVariantIsSlowAndOnCpu) {
  start_fixture("spin");
  FunctionLatency before = probe_window(3, "before");
  kill(fixture_, SIGUSR1);
  FunctionLatency after = probe_window(4, "after");
  EXPECT_EQ(our_uprobes(), 0u);
  EXPECT_EQ(our_programs(), 0u);

  EXPECT_GT(before.calls, 300u);
  EXPECT_GE(after.calls, 5u);  // 200 ms each over 4 s
  EXPECT_GE(after.p99_ns, 10 * before.p99_ns);
  EXPECT_GE(after.p50_ns, 150'000'000u);
  // Wanting the CPU: running, or runnable on this shared 2-core machine;
  // never asleep.
  EXPECT_GT(after.on_cpu_share + after.runqueue_share, 0.9);
  EXPECT_LT(after.blocked_share, 0.05);
  EXPECT_GT(after.on_cpu_share, 10 * after.blocked_share);
  EXPECT_LT(after.voluntary_switches_per_call, 1.0);
  Hint h = make_hint(after);
  EXPECT_TRUE(h.category == CauseCategory::kCpuBound || h.category == CauseCategory::kCpuWait) << h.sentence;
  std::cout << "hint: " << h.sentence << "\n";
}

TEST_F(ProbeE2E, NoProbeRemainsAfterInterruptOrKill) {
  start_fixture("spin");
  for (int sig : {SIGINT, SIGKILL}) {
    Child c = spawn({STACKWATCH_BIN, "probe", "-p", std::to_string(fixture_), "handle_request", "-d", "60"}, true);
    // Wait until the probes are attached (visible to the kernel).
    size_t seen = 0;
    for (int i = 0; i < 100 && seen == 0; ++i) {
      std::this_thread::sleep_for(100ms);
      seen = our_uprobes();
    }
    EXPECT_EQ(seen, 2u) << "uprobe + uretprobe while attached";
    kill(c.pid, sig);
    Result r = finish(c, 30);
    if (sig == SIGINT) {
      EXPECT_EQ(r.exit_code, 0) << r.err;
      EXPECT_NE(r.out.find("Stopped: interrupted; probes detached."), std::string::npos) << r.out;
      EXPECT_NE(r.out.find("calls "), std::string::npos) << r.out;
    } else {
      EXPECT_EQ(r.signal, SIGKILL);
    }
    // The kernel drops perf-event uprobes with their last fd: nothing stays.
    EXPECT_EQ(our_uprobes(), 0u) << "after signal " << sig;
    EXPECT_EQ(our_programs(), 0u) << "after signal " << sig;
  }
}

std::vector<StackSample> load_stacks(const fs::path& dir, StacksFileMeta& meta) {
  std::ifstream in(dir / "stacks.json");
  nlohmann::json doc = nlohmann::json::parse(in, nullptr, false);
  if (doc.is_discarded()) return {};
  return stacks_from_json(doc, &meta);
}

TEST_F(ProbeE2E, RealRecordingsRankTheSlowFunctionAndItsProbesSayDiskIo) {
  start_fixture("fsync");
  auto record = [&](const std::string& name) {
    // This fast virtual disk finishes most flushes in well under the default
    // 1 ms off-CPU floor; without them the stacks show only the CPU the
    // flushes cost, and the hint from stacks alone would say CPU-bound.
    Result r = run({STACKWATCH_BIN, "record", "-p", std::to_string(fixture_), "-d", "3", "--min-block-us", "20", "-o",
                    (dir_ / name).string()},
                   90);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  };
  record("baseline");
  kill(fixture_, SIGUSR1);
  record("anomaly");
  StacksFileMeta base_meta, anom_meta;
  auto base = load_stacks(dir_ / "baseline", base_meta);
  auto anom = load_stacks(dir_ / "anomaly", anom_meta);
  ASSERT_FALSE(anom.empty());
  RankOptions o;
  o.sample_hz = anom_meta.sample_hz ? anom_meta.sample_hz : 49;
  ProcessFilter process{static_cast<uint32_t>(fixture_), ""};
  auto suspects = rank_suspects(base, base_meta.duration_s, anom, anom_meta.duration_s, process, o);
  ASSERT_FALSE(suspects.empty());
  for (const Suspect& s : suspects) std::cout << "suspect " << s.function.name << " share " << s.share << "\n";
  // slow_part calls fdatasync; handle_request and main only contain it.
  EXPECT_EQ(suspects[0].function.name, "slow_part");
  EXPECT_TRUE(suspects[0].probeable);
  EXPECT_GT(suspects[0].share, 0.5);
  Hint from_stacks = make_hint(suspects[0]);
  EXPECT_EQ(from_stacks.category, CauseCategory::kDiskIo) << from_stacks.sentence;
  std::cout << "hint from stacks: " << from_stacks.sentence << "\n";

  // The record loop's next steps: probe the top suspects for a while.
  profiler::ProbePlan plan = profiler::plan_probes(fixture_, suspects);
  ASSERT_FALSE(plan.targets.empty());
  EXPECT_EQ(plan.targets[0].function, "slow_part");
  ASSERT_EQ(plan.suspect_index.size(), plan.targets.size());
  EXPECT_EQ(plan.suspect_index[0], 0u);
  std::vector<FunctionLatency> report;
  {
    profiler::LatencyProbes probes(plan.targets, {fixture_, 2});
    EXPECT_EQ(our_uprobes(), 2 * plan.targets.size());
    while (!probes.expired()) std::this_thread::sleep_for(100ms);
    report = probes.report();
  }
  EXPECT_EQ(our_uprobes(), 0u);
  ASSERT_EQ(report.size(), plan.targets.size());
  EXPECT_GE(report[0].calls, 3u);
  // Nearly all of the probed time in the system calls, blocked or on CPU
  // in the kernel (clean-clone CI runs measured 0.595 and 0.476 blocked).
  EXPECT_GT(report[0].blocked_share + report[0].syscall_cpu_share, 0.8)
      << "blocked " << report[0].blocked_share << ", in system calls on CPU " << report[0].syscall_cpu_share;
  EXPECT_GT(report[0].blocked_share, 0.2);
  Hint h = make_hint(suspects[0], &report[0]);
  EXPECT_EQ(h.category, CauseCategory::kDiskIo) << h.sentence;
  EXPECT_EQ(h.sentence.rfind("slow_part: p99 ", 0), 0u) << h.sentence;
  std::cout << "hint with probes: " << h.sentence << "\n";
}

TEST_F(ProbeE2E, UnknownFunctionIsAOneLineError) {
  start_fixture("spin");
  Result r = run({STACKWATCH_BIN, "probe", "-p", std::to_string(fixture_), "no_such_function", "-d", "1"}, 30);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "stackwatch: no function \"no_such_function\" in process " + std::to_string(fixture_) +
                       " (searched " + r.err.substr(r.err.find("(searched ") + 10, r.err.find(" mapped") - r.err.find("(searched ") - 10) +
                       " mapped files' .symtab and .dynsym; give the mangled name, an address, or -e BINARY)\n");
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  EXPECT_EQ(our_uprobes(), 0u);

  Result by_binary = run({STACKWATCH_BIN, "probe", "-e", LATENCY_SWITCH_FIXTURE, "nope", "-d", "1"}, 30);
  EXPECT_EQ(by_binary.exit_code, 1);
  EXPECT_EQ(by_binary.err.rfind("stackwatch: no function \"nope\" in " LATENCY_SWITCH_FIXTURE, 0), 0u) << by_binary.err;
}

}  // namespace
}  // namespace stackwatch::localize
