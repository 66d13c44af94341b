// Categories of cause and the hint sentence (see root_cause_hint.h).
#include "localize/root_cause_hint.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>

namespace stackwatch::localize {

namespace {

bool has(const std::string& name, const char* part) { return name.find(part) != std::string::npos; }
bool starts(const std::string& name, const char* prefix) { return name.rfind(prefix, 0) == 0; }

bool any_frame(const std::vector<std::string>& frames, std::initializer_list<const char*> parts) {
  for (const std::string& f : frames)
    for (const char* p : parts)
      if (has(f, p)) return true;
  return false;
}

bool any_prefix(const std::vector<std::string>& frames, std::initializer_list<const char*> prefixes) {
  for (const std::string& f : frames)
    for (const char* p : prefixes)
      if (starts(f, p)) return true;
  return false;
}

// Syscall entry, scheduler and tracing plumbing: present on every blocked
// stack, they say nothing about what was waited for.
bool plumbing(const std::string& f) {
  static const char* const kPrefixes[] = {"entry_SYSCALL", "do_syscall_64", "x64_sys_call", "__x64_sys_", "__ia32_sys_",
                                          "__do_sys_", "__se_sys_", "syscall_exit", "ret_from_fork", "schedule",
                                          "__schedule", "preempt_schedule", "finish_task_switch", "context_switch",
                                          "__traceiter", "__bpf_trace", "bpf_trace", "bpf_prog_", "asm_"};
  for (const char* p : kPrefixes)
    if (starts(f, p)) return true;
  return false;
}

// Generic layers (VFS, ksys, do_*): kept in the path only when nothing
// more specific is there.
bool generic(const std::string& f) {
  return starts(f, "vfs_") || starts(f, "ksys_") || starts(f, "do_") || starts(f, "__do_") || starts(f, "file_") ||
         starts(f, "generic_");
}

std::string percent(double share) {
  char buf[32];
  double p = std::clamp(share, 0.0, 1.0) * 100;
  if (p >= 99.5 && p < 100)  // never round a part up to the whole
    std::snprintf(buf, sizeof buf, "%.1f%%", std::floor(p * 10) / 10);
  else if (p >= 10 || p == 0)
    std::snprintf(buf, sizeof buf, "%.0f%%", p);
  else
    std::snprintf(buf, sizeof buf, "%.1f%%", p);
  return buf;
}

std::string rate_ms(double s_per_s) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.3g ms/s", s_per_s * 1000);
  return buf;
}

// Where the time of a suspect or a probed function went.
struct TimeSplit {
  double on = 0, sleeping = 0, runqueue = 0;
  double on_in_syscalls = 0;  // part of `on`: the kernel's work in the calls' system calls (probes only)
  std::string syscalls;       // "write 30%, fdatasync 20%": where on_in_syscalls went
  StateArray by_state{};
};

struct BlockedWeight {
  CauseCategory category;
  std::string path;
  double weight;
};

// The heaviest category over weighted kernel paths, and its heaviest path.
BlockedWeight heaviest(const std::vector<BlockedWeight>& paths) {
  std::map<CauseCategory, double> by_category;
  for (const auto& p : paths) by_category[p.category] += p.weight;
  BlockedWeight best{CauseCategory::kOtherWait, "", 0};
  double best_weight = 0;
  for (auto& [c, w] : by_category)
    if (w > best_weight) best_weight = w, best.category = c;
  double path_weight = 0;
  for (const auto& p : paths)
    if (p.category == best.category && p.weight > path_weight) path_weight = p.weight, best.path = p.path;
  best.weight = best_weight;
  return best;
}

OffCpuState dominant_state(const StateArray& a) {
  size_t best = static_cast<size_t>(OffCpuState::kInterruptible);
  for (size_t s = 2; s < kOffStates; ++s)
    if (a[s] > a[best]) best = s;
  return static_cast<OffCpuState>(best);
}

// Of the time a function wants a CPU, the part it must actually run to be
// called CPU-bound rather than starved (a spinning function on a machine
// with 2 busy cores ran 40% and waited 60% in our tests).
constexpr double kCpuBoundShareOfCpuTime = 0.25;

struct Verdict {
  CauseCategory category = CauseCategory::kUnknown;
  double runqueue_share = 0;  // CPU-bound: the part spent waiting for a CPU
  double share = 0;  // of the time (probe) or of the growth (stacks) in that category's kind
  OffCpuState state = OffCpuState::kNone;
  std::string path;
  // Probes that saw the calls' system calls: the time in them, split.
  bool in_syscalls = false;
  double blocked_share = 0, kernel_cpu_share = 0;
  std::string syscalls;
};

// Of the time a function spends in its system calls, the part it must be
// blocked to be called waiting (on disk, a lock...) rather than making
// the kernel compute: a 4 KiB write + fdatasync on this VM's virtual disk
// spent 45% blocked and 50% on CPU in ext4 and the block layer.
constexpr double kBlockedShareOfSyscallTime = 0.25;

// What blocked time waited on: the heaviest kind of kernel path, else the
// task state alone (uninterruptible sleep is mostly disk I/O).
void name_blocking(const TimeSplit& t, const std::vector<BlockedWeight>& paths, Verdict& v) {
  v.state = dominant_state(t.by_state);
  BlockedWeight b = heaviest(paths);
  v.path = b.path;
  if (b.weight > 0)
    v.category = b.category;
  else
    v.category = v.state == OffCpuState::kUninterruptible ? CauseCategory::kDiskIo : CauseCategory::kOtherWait;
}

Verdict judge(const TimeSplit& t, const std::vector<BlockedWeight>& paths) {
  Verdict v;
  double total = t.on + t.sleeping + t.runqueue;
  if (total <= 0) return v;
  // Most of the time in the calls' system calls, on CPU there or blocked:
  // the cause is what the system calls wait on, or the kernel's own work
  // in them, never a loop of the function's own.
  double own = t.on - t.on_in_syscalls + t.runqueue;
  double in_kernel = t.on_in_syscalls + t.sleeping;
  if (t.on_in_syscalls > 0 && in_kernel > own) {
    v.in_syscalls = true;
    v.share = in_kernel / total;
    v.blocked_share = t.sleeping / total;
    v.kernel_cpu_share = t.on_in_syscalls / total;
    v.syscalls = t.syscalls;
    if (t.sleeping >= kBlockedShareOfSyscallTime * in_kernel) {
      name_blocking(t, paths, v);
    } else {
      v.category = CauseCategory::kCpuBound;
    }
    return v;
  }
  // Time that wants a CPU (on it, or runnable) beats time asleep; within
  // it, a function that runs a fair part of it is CPU-bound work slowed
  // further by contention, one that barely runs is starved of CPU.
  bool wants_cpu = t.on + t.runqueue >= t.sleeping;
  if (wants_cpu && t.on >= kCpuBoundShareOfCpuTime * (t.on + t.runqueue)) {
    v.category = CauseCategory::kCpuBound;
    v.share = t.on / total;
    v.runqueue_share = t.runqueue / total;
  } else if (wants_cpu) {
    v.category = CauseCategory::kCpuWait;
    v.share = t.runqueue / total;
    v.state = OffCpuState::kRunning;
  } else {
    v.share = t.sleeping / total;
    name_blocking(t, paths, v);
  }
  return v;
}

std::string where(const Verdict& v) {
  if (v.in_syscalls) {
    // "in system calls: blocked 45% (uninterruptible) in fdatasync -> ...,
    // on CPU in the kernel 50% (write 30%, fdatasync 20%)"
    std::string cpu = "on CPU in the kernel " + percent(v.kernel_cpu_share);
    if (!v.syscalls.empty()) cpu += " (" + v.syscalls + ")";
    if (v.category == CauseCategory::kCpuBound)
      return "in system calls: " + cpu + (v.blocked_share >= 0.005 ? ", blocked " + percent(v.blocked_share) : "");
    std::string blocked = "blocked " + percent(v.blocked_share) + " (" + to_string(v.state) + ")";
    if (!v.path.empty()) blocked += " in " + v.path;
    return "in system calls: " + blocked + ", " + cpu;
  }
  switch (v.category) {
    case CauseCategory::kCpuBound:
      return v.runqueue_share >= 0.05 ? "on CPU (and " + percent(v.runqueue_share) + " runnable, waiting for a CPU)"
                                      : std::string("on CPU");
    case CauseCategory::kCpuWait: return "runnable, waiting for a CPU";
    case CauseCategory::kUnknown: return "unaccounted";
    default: break;
  }
  std::string s = std::string("blocked (") + to_string(v.state) + ")";
  if (!v.path.empty()) s += " in " + v.path;
  return s;
}

}  // namespace

const char* to_string(CauseCategory c) {
  switch (c) {
    case CauseCategory::kCpuBound: return "cpu_bound";
    case CauseCategory::kDiskIo: return "disk_io";
    case CauseCategory::kLockContention: return "lock_contention";
    case CauseCategory::kSleepTimer: return "sleep_timer";
    case CauseCategory::kNetworkWait: return "network_wait";
    case CauseCategory::kPageFaults: return "page_faults";
    case CauseCategory::kCpuWait: return "cpu_wait";
    case CauseCategory::kOtherWait: return "other_wait";
    case CauseCategory::kUnknown: return "unknown";
  }
  return "unknown";
}

const char* explain(CauseCategory c) {
  switch (c) {
    case CauseCategory::kCpuBound: return "the function is CPU-bound (a hot or runaway loop)";
    case CauseCategory::kDiskIo: return "the process waits on disk I/O";
    case CauseCategory::kLockContention: return "threads wait on a lock (contention)";
    case CauseCategory::kSleepTimer: return "the function sleeps or waits on a timer";
    case CauseCategory::kNetworkWait: return "the process waits on the network (sockets, poll, epoll)";
    case CauseCategory::kPageFaults: return "the process waits on page faults or memory reclaim";
    case CauseCategory::kCpuWait: return "the thread is runnable but waits for a CPU (CPU contention)";
    case CauseCategory::kOtherWait: return "the function blocks in the kernel";
    case CauseCategory::kUnknown: return "no evidence of where the time went";
  }
  return "";
}

CauseCategory classify_blocked(const std::string& user_frame, const std::vector<std::string>& kernel_frames,
                               OffCpuState state) {
  if (state == OffCpuState::kRunning) return CauseCategory::kCpuWait;
  const auto& k = kernel_frames;
  // Faults first: a major fault waits in io_schedule too, but the cause is memory.
  if (any_frame(k, {"page_fault", "handle_mm_fault", "do_anonymous_page", "do_swap_page", "swap_readpage",
                    "filemap_fault", "__do_fault", "do_huge_pmd", "try_to_free_pages", "shrink_", "__alloc_pages_slowpath",
                    "mem_cgroup_handle_over_high", "wait_on_page_writeback"}))
    return CauseCategory::kPageFaults;
  if (any_frame(k, {"fsync", "sync_file", "jbd2", "blk_", "io_schedule", "ext4_", "xfs_", "btrfs_", "submit_bio",
                    "bio_", "folio_wait", "wait_on_page", "wait_on_buffer", "nvme", "scsi", "iomap_"}) ||
      any_prefix(k, {"dm_", "md_", "raid"}))
    return CauseCategory::kDiskIo;
  if (any_frame(k, {"futex", "rwsem", "mutex_lock", "__mutex", "rt_mutex", "down_read", "down_write", "locks_lock",
                    "flock", "posix_lock", "fcntl_setlk"}) ||
      has(user_frame, "lll_lock") || has(user_frame, "mutex_lock") || has(user_frame, "rwlock"))
    return CauseCategory::kLockContention;
  if (any_frame(k, {"sock", "tcp_", "udp_", "inet_", "inet6_", "unix_", "skb", "sk_wait", "ep_poll", "epoll",
                    "do_sys_poll", "do_select", "core_sys_select", "poll_schedule", "netlink", "sys_recv", "sys_accept",
                    "sys_connect"}))
    return CauseCategory::kNetworkWait;
  if (any_frame(k, {"nanosleep", "nsleep", "msleep", "usleep", "sys_pause", "alarm"}) || has(user_frame, "sleep"))
    return CauseCategory::kSleepTimer;
  return state == OffCpuState::kUninterruptible ? CauseCategory::kDiskIo : CauseCategory::kOtherWait;
}

std::string short_kernel_path(const std::string& user_frame, const std::vector<std::string>& kernel_frames) {
  std::vector<std::string> meaningful;
  for (const std::string& f : kernel_frames)
    if (!plumbing(f)) meaningful.push_back(f);
  std::vector<std::string> shown;
  if (!meaningful.empty()) {
    auto specific = std::find_if(meaningful.begin(), meaningful.end(), [](const std::string& f) { return !generic(f); });
    if (specific != meaningful.end() && *specific != meaningful.back()) shown.push_back(*specific);
    shown.push_back(meaningful.back());
  }
  std::string out = user_frame;
  if (out.empty()) {
    // A kernel stack alone (the probes' view): name the system call.
    for (const std::string& f : kernel_frames)
      for (const char* p : {"__x64_sys_", "__ia32_sys_", "__arm64_sys_", "__se_sys_", "__do_sys_"})
        if (out.empty() && starts(f, p)) out = f.substr(std::strlen(p));
  }
  for (const std::string& f : shown) out += (out.empty() ? "" : " -> ") + f;
  return out;
}

std::string format_duration_ns(double ns) {
  char buf[48];
  if (ns >= 1e9)
    std::snprintf(buf, sizeof buf, "%.3g s", ns / 1e9);
  else if (ns >= 1e6)
    std::snprintf(buf, sizeof buf, "%.3g ms", ns / 1e6);
  else if (ns >= 1e3)
    std::snprintf(buf, sizeof buf, "%.3g us", ns / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0f ns", ns);
  return buf;
}

nlohmann::json FunctionLatency::to_json() const {
  nlohmann::json blocked_j = nlohmann::json::array();
  for (const auto& b : blocked)
    blocked_j.push_back(
        {{"kernel_frames", b.kernel_frames}, {"state", to_string(b.state)}, {"ns", b.ns}, {"events", b.events}});
  nlohmann::json syscalls_j = nlohmann::json::array();
  for (const auto& c : syscalls) syscalls_j.push_back({{"name", c.name}, {"on_cpu_ns", c.ns}, {"calls", c.calls}});
  return {{"function", function},
          {"module", module},
          {"file_offset", file_offset},
          {"tgid", tgid},
          {"seconds", seconds},
          {"calls", calls},
          {"p50_ns", p50_ns},
          {"p99_ns", p99_ns},
          {"max_ns", max_ns},
          {"mean_ns", mean_ns},
          {"on_cpu_share", on_cpu_share},
          {"syscall_cpu_share", syscall_cpu_share},
          {"blocked_share", blocked_share},
          {"runqueue_share", runqueue_share},
          {"voluntary_switches_per_call", voluntary_switches_per_call},
          {"involuntary_switches_per_call", involuntary_switches_per_call},
          {"log2_histogram_ns", log2_histogram},
          {"blocked_under", blocked_j},
          {"syscalls", syscalls_j},
          {"dropped", dropped},
          {"baseline", baseline ? baseline->to_json() : nlohmann::json(nullptr)},
          {"p99_ratio", p99_ratio()}};
}

double FunctionLatency::p99_ratio() const {
  if (!baseline || !baseline->measured || baseline->calls == 0 || baseline->p99_ns == 0 || calls == 0) return 0;
  return static_cast<double>(p99_ns) / static_cast<double>(baseline->p99_ns);
}

nlohmann::json BaselineLatency::to_json() const {
  return {{"measured", measured}, {"interval", interval}, {"seconds", seconds}, {"calls", calls},
          {"p50_ns", p50_ns},     {"p99_ns", p99_ns},     {"max_ns", max_ns},   {"sampled", sampled},
          {"rounds", rounds},     {"log2_histogram_ns", log2_histogram}};
}

BaselineLatency baseline_latency_from_json(const nlohmann::json& j) {
  BaselineLatency b;
  b.measured = j.value("measured", false);
  b.interval = j.value("interval", uint64_t{0});
  b.seconds = j.value("seconds", 0.0);
  b.calls = j.value("calls", uint64_t{0});
  b.p50_ns = j.value("p50_ns", uint64_t{0});
  b.p99_ns = j.value("p99_ns", uint64_t{0});
  b.max_ns = j.value("max_ns", uint64_t{0});
  b.sampled = j.value("sampled", false);
  b.rounds = j.value("rounds", uint64_t{0});
  b.log2_histogram = j.value("log2_histogram_ns", std::vector<uint64_t>{});
  return b;
}

FunctionLatency function_latency_from_json(const nlohmann::json& j) {
  FunctionLatency f;
  f.function = j.value("function", "");
  f.module = j.value("module", "");
  f.file_offset = j.value("file_offset", uint64_t{0});
  f.tgid = j.value("tgid", 0u);
  f.seconds = j.value("seconds", 0.0);
  f.calls = j.value("calls", uint64_t{0});
  f.p50_ns = j.value("p50_ns", uint64_t{0});
  f.p99_ns = j.value("p99_ns", uint64_t{0});
  f.max_ns = j.value("max_ns", uint64_t{0});
  f.mean_ns = j.value("mean_ns", 0.0);
  f.on_cpu_share = j.value("on_cpu_share", 0.0);
  f.syscall_cpu_share = j.value("syscall_cpu_share", 0.0);
  f.blocked_share = j.value("blocked_share", 0.0);
  f.runqueue_share = j.value("runqueue_share", 0.0);
  f.voluntary_switches_per_call = j.value("voluntary_switches_per_call", 0.0);
  f.involuntary_switches_per_call = j.value("involuntary_switches_per_call", 0.0);
  f.log2_histogram = j.value("log2_histogram_ns", std::vector<uint64_t>{});
  for (const auto& b : j.value("blocked_under", nlohmann::json::array())) {
    ProbeBlockedStack s;
    s.kernel_frames = b.value("kernel_frames", std::vector<std::string>{});
    s.state = off_cpu_state_from_string(b.value("state", "other"));
    s.ns = b.value("ns", uint64_t{0});
    s.events = b.value("events", uint64_t{0});
    f.blocked.push_back(std::move(s));
  }
  for (const auto& c : j.value("syscalls", nlohmann::json::array()))
    f.syscalls.push_back({c.value("name", ""), c.value("on_cpu_ns", uint64_t{0}), c.value("calls", uint64_t{0})});
  f.dropped = j.value("dropped", uint64_t{0});
  if (auto b = j.find("baseline"); b != j.end() && b->is_object()) f.baseline = baseline_latency_from_json(*b);
  return f;
}

namespace {

TimeSplit probe_split(const FunctionLatency& p) {
  TimeSplit t;
  t.on = p.on_cpu_share;
  t.sleeping = p.blocked_share;
  t.runqueue = p.runqueue_share;
  t.on_in_syscalls = std::min(p.syscall_cpu_share, p.on_cpu_share);
  // The named system calls' shares of the summed latency, the largest few.
  double total_ns = p.mean_ns * static_cast<double>(p.calls);
  for (size_t i = 0; i < p.syscalls.size() && i < 3 && total_ns > 0; ++i) {
    double share = static_cast<double>(p.syscalls[i].ns) / total_ns;
    if (share < 0.005) break;
    t.syscalls += (t.syscalls.empty() ? "" : ", ") + p.syscalls[i].name + " " + percent(share);
  }
  for (const auto& b : p.blocked) t.by_state[static_cast<size_t>(b.state)] += static_cast<double>(b.ns);
  return t;
}

std::vector<BlockedWeight> probe_paths(const FunctionLatency& p) {
  std::vector<BlockedWeight> out;
  for (const auto& b : p.blocked) {
    if (b.state == OffCpuState::kRunning) continue;
    // The probe's stacks start in the kernel: the innermost user frame is
    // the probed function or below it, so the path names the function.
    out.push_back({classify_blocked("", b.kernel_frames, b.state), short_kernel_path("", b.kernel_frames),
                   static_cast<double>(b.ns)});
  }
  return out;
}

// What the p99 compares with: "baseline 310 us, 3290x", "no calls before: ...".
std::string baseline_words(const BaselineLatency& b, uint64_t p99_ns) {
  char buf[160];
  if (b.measured && b.calls > 0) {
    double ratio = b.p99_ns > 0 ? static_cast<double>(p99_ns) / static_cast<double>(b.p99_ns) : 0;
    if (ratio >= 1.5)
      std::snprintf(buf, sizeof buf, "baseline %s, %.0fx", format_duration_ns(static_cast<double>(b.p99_ns)).c_str(), ratio);
    else
      std::snprintf(buf, sizeof buf, "baseline %s", format_duration_ns(static_cast<double>(b.p99_ns)).c_str());
  } else if (b.measured) {
    std::snprintf(buf, sizeof buf, "no calls before: none completed in a %.1f s probe of interval %llu", b.seconds,
                  static_cast<unsigned long long>(b.interval));
  } else if (!b.sampled) {
    std::snprintf(buf, sizeof buf, "no calls before: not in any stack of the %.0f s before", b.seconds);
  } else {
    std::snprintf(buf, sizeof buf, "no baseline: not probed before");
  }
  return buf;
}

std::string probe_numbers(const FunctionLatency& p) {
  char buf[320];
  std::string before = p.baseline ? baseline_words(*p.baseline, p.p99_ns) + "; " : "";
  std::snprintf(buf, sizeof buf, "p99 %s (%sp50 %s, max %s, %llu calls)", format_duration_ns(p.p99_ns).c_str(),
                before.c_str(), format_duration_ns(p.p50_ns).c_str(), format_duration_ns(p.max_ns).c_str(),
                static_cast<unsigned long long>(p.calls));
  return buf;
}

// Calls that run (on CPU) at least this many times as long as a whole
// call took before do more work than before, however long they also wait.
constexpr double kMoreWorkFactor = 4;

// Whether a probed function that mostly waited for a CPU also does more
// work per call than before: its CPU time per call against the baseline's
// median call, or, without a measured baseline, the stacks' verdict that
// its on-CPU time grew (more than its runnable time, when that was seen).
bool more_work_per_call(const FunctionLatency& p, const Verdict& stacks) {
  double cpu_per_call = p.mean_ns * p.on_cpu_share;
  if (p.baseline && p.baseline->measured && p.baseline->calls > 0)
    return cpu_per_call >= kMoreWorkFactor * static_cast<double>(std::max<uint64_t>(p.baseline->p50_ns, 1));
  return stacks.category == CauseCategory::kCpuBound;
}

void fill_record(Hint& h, const Verdict& v) {
  h.category = v.category;
  h.record["category"] = to_string(v.category);
  h.record["explanation"] = explain(v.category);
  h.record["share_in_category"] = v.share;
  if (v.state != OffCpuState::kNone) h.record["state"] = to_string(v.state);
  if (!v.path.empty()) h.record["blocked_path"] = v.path;
  h.record["sentence"] = h.sentence;
}

}  // namespace

Hint make_hint(const Suspect& s, const FunctionLatency* probe) {
  Hint h;
  h.process = s.process;
  h.function = s.function.name;
  h.record = {{"process", s.process}, {"tgid", s.tgid}, {"function", s.function.name},
              {"module", s.function.module}, {"suspect", s.to_json()}};

  // The stacks' view: where the growth went (or, if nothing grew, the time).
  TimeSplit grown;
  grown.on = std::max(0.0, s.anomaly_on - s.baseline_on);
  for (size_t st = 1; st < kOffStates; ++st) {
    double g = std::max(0.0, s.anomaly_off[st] - s.baseline_off[st]);
    grown.by_state[st] = g;
    if (st == static_cast<size_t>(OffCpuState::kRunning))
      grown.runqueue += g;
    else
      grown.sleeping += g;
  }
  std::vector<BlockedWeight> paths;
  for (const BlockedEvidence& b : s.blocked) {
    double w = b.growth() > 0 ? b.growth() : sum(b.anomaly);
    OffCpuState state = dominant_state(b.anomaly);
    if (b.anomaly[static_cast<size_t>(OffCpuState::kRunning)] > sum(b.anomaly) / 2) state = OffCpuState::kRunning;
    if (state == OffCpuState::kRunning) continue;
    paths.push_back({classify_blocked(b.user_frame, b.kernel_frames, state),
                     short_kernel_path(b.user_frame, b.kernel_frames), w});
  }
  Verdict stacks_verdict = judge(grown, paths);

  if (probe && probe->calls > 0) {
    // Measured per call: the probe decides on CPU vs blocked; the kernel
    // paths come from the probe if it saw any, else from the stacks.
    auto probe_blocked = probe_paths(*probe);
    TimeSplit split = probe_split(*probe);
    if (probe_blocked.empty()) split.by_state = grown.by_state;
    Verdict v = judge(split, probe_blocked.empty() ? paths : probe_blocked);
    if (v.category == CauseCategory::kCpuWait && more_work_per_call(*probe, stacks_verdict)) {
      // Starved of CPU, but each call also runs far longer than a whole
      // call took before: the calls do more work, on a busy machine.
      v.category = CauseCategory::kCpuBound;
      v.share = split.on / (split.on + split.sleeping + split.runqueue);
      v.runqueue_share = split.runqueue / (split.on + split.sleeping + split.runqueue);
      v.state = OffCpuState::kNone;
    }
    h.sentence = s.function.name + ": " + probe_numbers(*probe) + ", " + percent(v.share) + " of it " + where(v) +
                 ": " + explain(v.category);
    h.record["probe"] = probe->to_json();
    if (double r = probe->p99_ratio(); r > 0) h.record["p99_ratio"] = r;
    fill_record(h, v);
    return h;
  }

  const Verdict& v = stacks_verdict;
  std::string rates;
  if (v.category == CauseCategory::kCpuBound)
    rates = "on CPU " + rate_ms(s.anomaly_on) + " (baseline " + rate_ms(s.baseline_on) + ")";
  else
    rates = "off CPU " + rate_ms(sum(s.anomaly_off)) + " (baseline " + rate_ms(sum(s.baseline_off)) + "), " +
            percent(v.share) + " of the growth " + where(v);
  h.sentence = s.function.name + ": " + percent(s.share) + " of the change in " + s.process + "; " + rates + ": " +
               explain(v.category);
  fill_record(h, v);
  return h;
}

Hint make_hint(const FunctionLatency& probe) {
  Hint h;
  h.function = probe.function;
  h.record = {{"function", probe.function}, {"module", probe.module}, {"tgid", probe.tgid}, {"probe", probe.to_json()}};
  if (probe.calls == 0) {
    h.sentence = probe.function + ": no completed call in " + format_duration_ns(probe.seconds * 1e9);
    fill_record(h, Verdict{});
    return h;
  }
  Verdict v = judge(probe_split(probe), probe_paths(probe));
  h.sentence = probe.function + ": " + probe_numbers(probe) + ", " + percent(v.share) + " of it " + where(v) + ": " +
               explain(v.category);
  fill_record(h, v);
  return h;
}

}  // namespace stackwatch::localize
