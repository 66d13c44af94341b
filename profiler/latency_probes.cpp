// Attaching the latency probes and reading their maps (see latency_probes.h).
#include "profiler/latency_probes.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <system_error>
#include <thread>

#include "latency.skel.h"
#include "profiler/bpf_handles.h"
#include "recording/error.h"
#include "profiler/syscall_names.h"
#include "symbolizer/symbolizer.h"

extern "C" {
#include "bpf/latency.h"
#include "bpf/stackwatch.h"
}

namespace stackwatch::profiler {

// The structs shared with BPF: same layout on both sides.
static_assert(sizeof(sw_lat_stats) == 10 * 8 + SW_LAT_BUCKETS * 8);
static_assert(sizeof(sw_lat_frame) == 64);
static_assert(sizeof(sw_lat_thread) == 48 + SW_LAT_MAX_DEPTH * sizeof(sw_lat_frame));
static_assert(sizeof(sw_lat_block_key) == 16);
static_assert(sizeof(sw_lat_block_value) == 16);
static_assert(sizeof(sw_lat_syscall_key) == 8);
static_assert(sizeof(sw_lat_syscall_value) == 16);

namespace {

// Kernel stacks reported per function: the few that hold most blocked time.
constexpr size_t kBlockedStacksPerFunction = 5;
// System calls reported per function: the few that hold most on-CPU kernel time.
constexpr size_t kSyscallsPerFunction = 5;

localize::FunctionLatency summarize(const ProbeTarget& t, const sw_lat_stats& s, double seconds, int pid) {
  localize::FunctionLatency f;
  f.function = t.function;
  f.module = t.binary_path;
  f.file_offset = t.file_offset;
  f.tgid = pid > 0 ? static_cast<uint32_t>(pid) : 0;
  f.seconds = seconds;
  f.calls = s.count;
  f.max_ns = s.max_ns;
  if (s.count == 0) return f;
  f.mean_ns = static_cast<double>(s.sum_ns) / static_cast<double>(s.count);
  double total = static_cast<double>(s.sum_ns);
  if (total > 0) {
    f.on_cpu_share = static_cast<double>(s.oncpu_ns) / total;
    f.syscall_cpu_share = std::min(f.on_cpu_share, static_cast<double>(s.syscall_ns) / total);
    f.blocked_share = std::min(1.0, static_cast<double>(s.sleep_ns) / total);
    f.runqueue_share = std::min(1.0, static_cast<double>(s.runqueue_ns) / total);
  }
  f.voluntary_switches_per_call = static_cast<double>(s.nvcsw) / static_cast<double>(s.count);
  f.involuntary_switches_per_call = static_cast<double>(s.nivcsw) / static_cast<double>(s.count);

  // Percentiles: the middle of the bucket holding the q-th call, never above the max.
  uint64_t hist_total = 0;
  for (uint32_t b = 0; b < SW_LAT_BUCKETS; ++b) hist_total += s.hist[b];
  auto percentile = [&](double q) -> uint64_t {
    auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(hist_total)));
    uint64_t seen = 0;
    for (uint32_t b = 0; b < SW_LAT_BUCKETS; ++b) {
      seen += s.hist[b];
      if (seen >= std::max<uint64_t>(rank, 1)) {
        uint64_t lo = sw_lat_bucket_floor(b);
        uint64_t hi = b + 1 < SW_LAT_BUCKETS ? sw_lat_bucket_floor(b + 1) : lo;
        return std::min<uint64_t>((lo + hi) / 2, s.max_ns);
      }
    }
    return s.max_ns;
  };
  f.p50_ns = percentile(0.50);
  f.p99_ns = percentile(0.99);

  // log2 buckets: [2^i, 2^(i+1)) ns.
  f.log2_histogram.assign(SW_LAT_MAX_LOG2 + 2, 0);
  for (uint32_t b = 0; b < SW_LAT_BUCKETS; ++b) {
    if (!s.hist[b]) continue;
    uint64_t lo = sw_lat_bucket_floor(b);
    size_t i = lo == 0 ? 0 : static_cast<size_t>(63 - __builtin_clzll(lo));
    f.log2_histogram[std::min(i, f.log2_histogram.size() - 1)] += s.hist[b];
  }
  while (!f.log2_histogram.empty() && f.log2_histogram.back() == 0) f.log2_histogram.pop_back();
  return f;
}

bool tracing_frame(const std::string& name) {
  for (const char* p : {"bpf_prog_", "bpf_trampoline_", "__bpf_trace_", "bpf_trace_run", "__traceiter_"})
    if (name.rfind(p, 0) == 0) return true;
  return false;
}

OffCpuState state_of(uint32_t sw_state) {
  switch (sw_state) {
    case SW_STATE_RUNNING: return OffCpuState::kRunning;
    case SW_STATE_INTERRUPTIBLE: return OffCpuState::kInterruptible;
    case SW_STATE_UNINTERRUPTIBLE: return OffCpuState::kUninterruptible;
    default: return OffCpuState::kOther;
  }
}

}  // namespace

bool has_uprobe_pmu() { return std::filesystem::exists("/sys/bus/event_source/devices/uprobe/type"); }

struct LatencyProbes::Impl {
  SkeletonPtr<latency_bpf, latency_bpf__destroy> skel;
  LinkPtr switch_link;
  LinkPtr sys_enter_link, sys_exit_link;
  std::vector<LinkPtr> links;  // entry, return, entry, return, ...
};

LatencyProbes::LatencyProbes(std::vector<ProbeTarget> targets, const LatencyProbeOptions& options)
    : impl_(std::make_unique<Impl>()), targets_(std::move(targets)), options_(options) {
  if (targets_.empty()) throw Error("no function to probe");
  if (targets_.size() > SW_LAT_MAX_PROBES)
    throw Error("too many functions to probe at once: " + std::to_string(targets_.size()) + " (at most " +
                std::to_string(SW_LAT_MAX_PROBES) + ")");
  if (!has_uprobe_pmu())
    throw Error("this kernel has no uprobe PMU (/sys/bus/event_source/devices/uprobe): stackwatch does not use "
                "tracefs uprobes, which a crash could leave behind");
  install_libbpf_logger();

  impl_->skel.reset(latency_bpf__open());
  if (!impl_->skel) throw_bpf_error("cannot open the latency BPF program", errno);
  // The shared maps of common.bpf.h are not used here: do not create them
  // (the sample ring buffer alone is 8 MiB, the record slot 17 KiB a CPU).
  for (bpf_map* m : {impl_->skel->maps.targets, impl_->skel->maps.seen, impl_->skel->maps.proc_events,
                     impl_->skel->maps.stack_samples, impl_->skel->maps.stack_scratch,
                     impl_->skel->maps.stack_mappings, impl_->skel->maps.stack_tops})
    bpf_map__set_autocreate(m, false);
  if (int err = latency_bpf__load(impl_->skel.get())) throw_bpf_error("cannot load the latency BPF program", err);

  impl_->switch_link.reset(bpf_program__attach(impl_->skel->progs.lat_switch));
  if (!impl_->switch_link) throw_bpf_error("cannot attach to sched_switch", errno);
  impl_->sys_enter_link.reset(bpf_program__attach(impl_->skel->progs.lat_sys_enter));
  if (!impl_->sys_enter_link) throw_bpf_error("cannot attach to sys_enter", errno);
  impl_->sys_exit_link.reset(bpf_program__attach(impl_->skel->progs.lat_sys_exit));
  if (!impl_->sys_exit_link) throw_bpf_error("cannot attach to sys_exit", errno);

  for (size_t i = 0; i < targets_.size(); ++i) {
    const ProbeTarget& t = targets_[i];
    // The return probe first: an entry without its return would stay on
    // the thread's stack of calls and charge every later block to it.
    for (bool retprobe : {true, false}) {
      bpf_uprobe_opts opts{};
      opts.sz = sizeof(opts);
      opts.retprobe = retprobe;
      opts.bpf_cookie = i;
      bpf_program* prog = retprobe ? impl_->skel->progs.lat_return : impl_->skel->progs.lat_entry;
      bpf_link* link = bpf_program__attach_uprobe_opts(prog, options_.pid, t.binary_path.c_str(), t.file_offset, &opts);
      if (!link) {
        int err = errno;
        // impl_ (and so every link attached so far) is released by the unique_ptr.
        throw_bpf_error("cannot attach a " + std::string(retprobe ? "uretprobe" : "uprobe") + " to " + t.function +
                            " in " + t.binary_path,
                        err);
      }
      impl_->links.emplace_back(link);
    }
  }
  started_ = std::chrono::steady_clock::now();
}

LatencyProbes::~LatencyProbes() { detach(); }

void LatencyProbes::detach() {
  if (!impl_ || impl_->links.empty()) return;
  frozen_seconds_ = elapsed_seconds();
  // Uprobes first: no call starts after this; then the switch hook. Each
  // uprobe's release waits for RCU grace periods (~150 ms here); released
  // together they share them, so 16 probes take about as long as one
  // instead of seconds.
  std::vector<std::thread> releasers;
  for (LinkPtr& link : impl_->links) {
    try {
      releasers.emplace_back([l = std::move(link)]() mutable { l.reset(); });
    } catch (const std::system_error&) {
      link.reset();  // no thread: released here, one at a time
    }
  }
  impl_->links.clear();
  for (std::thread& t : releasers) t.join();
  impl_->switch_link.reset();
  impl_->sys_enter_link.reset();
  impl_->sys_exit_link.reset();
}

double LatencyProbes::elapsed_seconds() const {
  if (frozen_seconds_ >= 0) return frozen_seconds_;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

uint64_t LatencyProbes::dropped() const {
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return 0;
  uint64_t total = 0;
  std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpu));
  for (uint32_t reason = 0; reason < SW_LAT_DROP_MAX; ++reason) {
    if (bpf_map__lookup_elem(impl_->skel->maps.lat_drops, &reason, sizeof reason, per_cpu.data(),
                             per_cpu.size() * sizeof(uint64_t), 0) != 0)
      continue;
    for (uint64_t v : per_cpu) total += v;
  }
  return total;
}

std::vector<localize::FunctionLatency> LatencyProbes::report() const {
  std::vector<localize::FunctionLatency> out;
  double seconds = elapsed_seconds();
  uint64_t drops = dropped();
  for (uint32_t i = 0; i < targets_.size(); ++i) {
    sw_lat_stats s{};
    bpf_map__lookup_elem(impl_->skel->maps.lat_stats, &i, sizeof i, &s, sizeof s, 0);
    out.push_back(summarize(targets_[i], s, seconds, options_.pid));
    out.back().dropped = drops;
  }

  // Blocked time by (probe, kernel stack, state), symbolized with kallsyms.
  static const symbolizer::Kallsyms kallsyms = symbolizer::Kallsyms::load_cached();
  std::vector<std::map<std::pair<std::vector<std::string>, uint32_t>, localize::ProbeBlockedStack>> by_probe(
      targets_.size());
  sw_lat_block_key key{}, next{};
  bool first = true;
  std::vector<uint64_t> ips(SW_MAX_STACK_DEPTH);
  while (bpf_map__get_next_key(impl_->skel->maps.lat_blocked, first ? nullptr : &key, &next, sizeof next) == 0) {
    first = false;
    key = next;
    sw_lat_block_value v{};
    if (bpf_map__lookup_elem(impl_->skel->maps.lat_blocked, &key, sizeof key, &v, sizeof v, 0) != 0) continue;
    if (key.probe_id >= targets_.size()) continue;
    std::vector<std::string> frames;  // outermost first
    if (key.kernel_stack_id >= 0) {
      std::fill(ips.begin(), ips.end(), 0);
      uint32_t id = static_cast<uint32_t>(key.kernel_stack_id);
      if (bpf_map__lookup_elem(impl_->skel->maps.lat_stacks, &id, sizeof id, ips.data(), ips.size() * sizeof(uint64_t),
                               0) == 0) {
        for (uint64_t ip : ips) {
          if (!ip) break;
          const symbolizer::KernelSymbol* sym = kallsyms.find(ip);
          frames.push_back(sym ? sym->name : "[unknown]");
        }
        // The innermost frames are the tracing machinery that took the stack.
        while (!frames.empty() && tracing_frame(frames.front())) frames.erase(frames.begin());
        std::reverse(frames.begin(), frames.end());
      }
    }
    auto& slot = by_probe[key.probe_id][{frames, key.state}];
    slot.kernel_frames = frames;
    slot.state = state_of(key.state);
    slot.ns += v.ns;
    slot.events += v.events;
  }
  for (size_t i = 0; i < targets_.size(); ++i) {
    auto& blocked = out[i].blocked;
    for (auto& [k, b] : by_probe[i]) blocked.push_back(b);
    std::stable_sort(blocked.begin(), blocked.end(),
                     [](const localize::ProbeBlockedStack& a, const localize::ProbeBlockedStack& b) { return a.ns > b.ns; });
    if (blocked.size() > kBlockedStacksPerFunction) blocked.resize(kBlockedStacksPerFunction);
  }

  // On-CPU kernel time by (probe, system call).
  sw_lat_syscall_key skey{}, snext{};
  first = true;
  while (bpf_map__get_next_key(impl_->skel->maps.lat_syscalls, first ? nullptr : &skey, &snext, sizeof snext) == 0) {
    first = false;
    skey = snext;
    sw_lat_syscall_value v{};
    if (bpf_map__lookup_elem(impl_->skel->maps.lat_syscalls, &skey, sizeof skey, &v, sizeof v, 0) != 0) continue;
    if (skey.probe_id >= targets_.size() || v.ns == 0) continue;
    out[skey.probe_id].syscalls.push_back({syscall_name(skey.nr), v.ns, v.calls});
  }
  for (auto& f : out) {
    std::stable_sort(f.syscalls.begin(), f.syscalls.end(),
                     [](const localize::ProbeSyscall& a, const localize::ProbeSyscall& b) { return a.ns > b.ns; });
    if (f.syscalls.size() > kSyscallsPerFunction) f.syscalls.resize(kSyscallsPerFunction);
  }
  return out;
}

void BackgroundDetacher::detach(std::unique_ptr<LatencyProbes> probes) {
  if (!probes) return;
  std::erase_if(pending_, [](std::future<void>& f) {
    return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  });
  try {
    pending_.push_back(std::async(std::launch::async, [p = std::move(probes)]() mutable { p.reset(); }));
  } catch (const std::system_error&) {
    probes.reset();  // no thread: detached here (a no-op if the task took them)
  }
}

void BackgroundDetacher::wait() {
  for (std::future<void>& f : pending_) f.wait();
  pending_.clear();
}

ProbePlan plan_probes(int pid, const std::vector<localize::Suspect>& suspects, size_t max) {
  ProbePlan plan;
  auto try_add = [&](size_t index) {
    const localize::Suspect& s = suspects[index];
    if (plan.targets.size() >= max) return;
    std::string binary;
    if (!s.module_path.empty() && s.module_path.front() == '/') {
      binary = std::filesystem::exists(s.module_path) ? s.module_path
                                                      : "/proc/" + std::to_string(pid) + "/root" + s.module_path;
    }
    try {
      ProbeTarget t = resolve_probe_target(s.function.name, pid, binary);
      for (const ProbeTarget& o : plan.targets)
        if (o.binary_path == t.binary_path && o.file_offset == t.file_offset) return;
      plan.targets.push_back(std::move(t));
      plan.suspect_index.push_back(index);
    } catch (const Error& e) {
      plan.skipped.push_back(s.function.name + ": " + e.what());
    }
  };
  for (size_t i = 0; i < suspects.size(); ++i)
    if (suspects[i].probeable) try_add(i);
  if (plan.targets.empty())
    for (size_t i = 0; i < suspects.size(); ++i) {
      const localize::Suspect& s = suspects[i];
      if (!s.probeable && s.function.module != "[kernel]" && s.function.name.find("+0x") == std::string::npos) try_add(i);
    }
  return plan;
}

}  // namespace stackwatch::profiler
