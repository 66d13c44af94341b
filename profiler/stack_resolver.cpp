// Raw stacks -> symbolized StackSamples (see stack_resolver.h).
#include "profiler/stack_resolver.h"

#include <cstring>

#include "profiler/process_tracker.h"

namespace stackwatch::profiler {

// Kernel symbols do not change during a recording, but user addresses of
// different processes may be reused after exec; both caches are cleared at
// this size so a long recording of many processes stays bounded. An entry
// is ~250 bytes (a Frame and its strings): 50,000 is ~12 MB at most, and
// far more return addresses than a whole machine's kernel stacks touch in
// practice (a few thousand); a lookup after a clear is a binary search.
static constexpr size_t kMaxCachedAddresses = 50000;

const std::vector<Frame>& StackResolver::kernel_frames(uint64_t address) {
  auto it = kernel_cache_.find(address);
  if (it != kernel_cache_.end()) return it->second;
  if (kernel_cache_.size() >= kMaxCachedAddresses) kernel_cache_.clear();
  return kernel_cache_.emplace(address, symbolizer_.symbolize_kernel(address)).first->second;
}

const std::vector<Frame>& StackResolver::user_frames(uint32_t tgid, uint64_t address, bool is_return_address) {
  UserKey key{tgid, address};
  auto it = user_cache_.find(key);
  if (it != user_cache_.end()) return it->second;
  return user_cache_.emplace(key, symbolizer_.symbolize_user(tgid, address, is_return_address)).first->second;
}

// The BPF program and its trampoline are on top of every kernel stack taken
// from a tracepoint; they are stackwatch, not the profiled program.
static bool is_bpf_frame(const Frame& f) {
  const std::string& n = f.function;
  return n.starts_with("bpf_prog_") || n.starts_with("bpf_trace_run") || n.starts_with("__bpf_trace_");
}

static std::string comm_string(const char* comm) { return std::string(comm, strnlen(comm, SW_COMM_LEN)); }

std::vector<StackSample> StackResolver::resolve(const std::vector<RawStack>& raw) {
  // Per interval: user addresses are only valid for the mappings of this
  // moment (a process may exec between intervals).
  user_cache_.clear();
  std::vector<StackSample> out;
  out.reserve(raw.size());
  for (const RawStack& r : raw) {
    StackSample s;
    s.tgid = r.key.tgid;
    s.tid = r.key.tid;
    s.kind = r.kind;
    s.thread_name = comm_string(r.key.comm);
    s.process_name = comm_string(r.value.process_comm);
    if (s.process_name.empty()) s.process_name = tracker_.process_name(s.tgid);
    if (s.process_name.empty()) s.process_name = s.thread_name;
    s.count = r.value.count;
    if (r.kind == StackKind::kOffCpu) s.off_ns = r.value.total_ns;
    s.bytes = r.bytes;
    s.latency_ns = r.latency_ns;
    s.detail = r.detail;
    s.kernel_stack_id = r.key.kernel_stack_id;
    s.user_stack_id = r.key.user_stack_id;
    s.off_state = r.kind == StackKind::kOffCpu ? static_cast<OffCpuState>(r.key.state + 1) : OffCpuState::kNone;
    bool top = true;
    for (uint64_t ip : r.kernel_ips) {
      const auto& frames = kernel_frames(ip);
      if (top && !frames.empty() && is_bpf_frame(frames.back())) continue;
      top = false;
      s.frames.insert(s.frames.end(), frames.begin(), frames.end());
    }
    for (size_t i = 0; i < r.user_ips.size(); ++i) {
      const auto& frames = user_frames(s.tgid, r.user_ips[i], i > 0);
      // A frame-pointer walk through code without frame pointers reads
      // data as return addresses; one that is in no mapping at all ends the
      // stack rather than showing up as an invented frame.
      if (i > 0 && frames.size() == 1 && frames[0].function.empty() &&
          (frames[0].module.empty() || frames[0].module == "[unknown]"))
        break;
      s.frames.insert(s.frames.end(), frames.begin(), frames.end());
    }
    out.push_back(std::move(s));
  }
  if (kernel_cache_.size() > kMaxCachedAddresses) kernel_cache_.clear();
  // Freed now rather than at the next interval: on a machine starting
  // processes, most of its entries are of processes seen once, and the rest
  // of the interval's work (totals, detector, outputs) peaks after this.
  { std::unordered_map<UserKey, std::vector<Frame>, UserKeyHash> done = std::move(user_cache_); }
  user_cache_.clear();
  return out;
}

}  // namespace stackwatch::profiler
