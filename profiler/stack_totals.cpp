// Recording totals and folded views (see stack_totals.h).
#include "profiler/stack_totals.h"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <unordered_set>

#include "localize/interval_monitor.h"

namespace stackwatch::profiler {

std::string stack_identity(const StackSample& s) {
  std::string id;
  id.reserve(64 + s.frames.size() * 32);
  id += std::to_string(s.tgid) + '/' + std::to_string(s.tid) + '/' + to_string(s.kind) + '/' +
        to_string(s.off_state) + '/' + s.detail + '/' + s.process_name + '/' + s.thread_name;
  for (const Frame& f : s.frames) {
    id += '|';
    id += std::to_string(f.address);
    id += ':';
    id += f.function.empty() ? f.module : f.function;
  }
  return id;
}

std::string aged_identity(const StackSample& s, bool exited) {
  std::string id;
  id.reserve(64 + s.frames.size() * 32);
  id += exited ? std::string("x") : std::to_string(s.tgid);
  id += '/';
  id += to_string(s.kind);
  id += '/';
  id += to_string(s.off_state);
  id += '/' + s.detail + '/' + s.process_name + '/' + s.thread_name;
  for (const Frame& f : s.frames) {
    id += f.kernel ? "|k" : (f.inlined ? "|i" : "|u");
    id += f.module;
    id += '!';
    if (f.function.empty())
      id += std::to_string(f.module_offset);  // same code in every process, unlike the address
    else
      id += f.function;
  }
  return id;
}

bool process_exists(uint32_t tgid) { return ::kill(static_cast<pid_t>(tgid), 0) == 0 || errno == EPERM; }

StackTotals::StackTotals(uint64_t idle_intervals, std::function<bool(uint32_t)> alive, size_t max_aged_entries)
    : idle_intervals_(idle_intervals == 0 ? 1 : idle_intervals),
      alive_(std::move(alive)),
      max_aged_(max_aged_entries == 0 ? 1 : max_aged_entries) {}

static void sum_into(StackSample& total, const StackSample& s) {
  total.count += s.count;
  total.off_ns += s.off_ns;
  total.bytes += s.bytes;
  total.latency_ns += s.latency_ns;
  if (s.label) localize::add_label(total.label, *s.label);
}

void StackTotals::add(const std::vector<StackSample>& interval_stacks) {
  for (const StackSample& s : interval_stacks) {
    std::string id = stack_identity(s);
    auto it = live_.find(id);
    if (it == live_.end()) {
      Entry& e = live_.emplace(std::move(id), Entry{s, interval_, inserted_++, false}).first->second;
      e.sample.kernel_stack_id = -1;  // BPF ids mean nothing across intervals
      e.sample.user_stack_id = -1;
    } else {
      sum_into(it->second.sample, s);
      it->second.last_interval = interval_;
    }
  }
}

void StackTotals::end_interval(const std::vector<uint32_t>& exited_tgids) {
  retire_processes(exited_tgids);
  // Processes with no stack this interval, and those of aged entries, are
  // checked: a short-lived process's stacks leave the live view an interval
  // after its last one.
  if (alive_) {
    std::unordered_set<uint32_t> quiet;
    for (const auto& [id, e] : live_)
      if (e.last_interval < interval_ && !e.exited) quiet.insert(e.sample.tgid);
    for (const auto& [id, e] : aged_)
      if (!e.exited) quiet.insert(e.sample.tgid);
    std::vector<uint32_t> gone;
    for (uint32_t tgid : quiet)
      if (!alive_(tgid)) gone.push_back(tgid);
    std::sort(gone.begin(), gone.end());
    retire_processes(gone);
  }
  // Idle stacks leave the live view (a scan per interval: the live view is
  // what one idle period adds, so the scan is bounded too).
  age_out_live([&](const Entry& e) { return interval_ - e.last_interval >= idle_intervals_; });
  fold_tail();
  ++interval_;
}

static bool is_other_stacks(const StackSample& s) {
  return s.frames.size() == 1 && s.frames[0].function == StackTotals::kOtherStacks;
}

// A rough common scale for ranking: a sample, a blocked millisecond.
static double weight(const StackSample& s) {
  return static_cast<double>(s.count) + static_cast<double>(s.off_ns + s.latency_ns) / 1e6 +
         static_cast<double>(s.bytes) / 4096;
}

void StackTotals::fold_tail() {
  if (aged_.size() <= max_aged_) return;
  // Down to three quarters, so this runs every few intervals, not every one.
  size_t target = max_aged_ - max_aged_ / 4;
  std::vector<std::unordered_map<std::string, Entry>::iterator> candidates;
  for (auto it = aged_.begin(); it != aged_.end(); ++it)
    if (!is_other_stacks(it->second.sample)) candidates.push_back(it);
  std::sort(candidates.begin(), candidates.end(), [](const auto& a, const auto& b) {
    double wa = weight(a->second.sample), wb = weight(b->second.sample);
    if (wa != wb) return wa < wb;
    return a->second.first_seen < b->second.first_seen;
  });
  std::vector<Entry> folding;
  for (auto it : candidates) {
    if (aged_.size() <= target) break;
    folding.push_back(std::move(it->second));
    aged_.erase(it);
  }
  for (Entry& e : folding) {
    Frame other;
    other.function = kOtherStacks;
    e.sample.frames.assign(1, other);
    ++aging_.folded;
    --aging_.aged;  // counted when it left the live view
    bool exited = e.exited;
    age_out(std::move(e), exited);
  }
}

template <typename Match>
void StackTotals::age_out_live(Match match) {
  std::vector<std::unordered_map<std::string, Entry>::iterator> leaving;
  for (auto it = live_.begin(); it != live_.end(); ++it)
    if (match(it->second)) leaving.push_back(it);
  std::sort(leaving.begin(), leaving.end(),
            [](const auto& a, const auto& b) { return a->second.first_seen < b->second.first_seen; });
  for (auto it : leaving) {
    bool exited = it->second.exited;
    age_out(std::move(it->second), exited);
    live_.erase(it);
  }
}

void StackTotals::age_out(Entry entry, bool exited) {
  ++aging_.aged;
  std::string id = aged_identity(entry.sample, exited);
  auto [it, inserted] = aged_.try_emplace(std::move(id));
  if (inserted) {
    entry.exited = exited;
    it->second = std::move(entry);
    return;
  }
  ++aging_.merged;
  sum_into(it->second.sample, entry.sample);
  it->second.last_interval = std::max(it->second.last_interval, entry.last_interval);
  it->second.first_seen = std::min(it->second.first_seen, entry.first_seen);
}

void StackTotals::retire_processes(const std::vector<uint32_t>& tgids) {
  if (tgids.empty()) return;
  std::unordered_set<uint32_t> gone(tgids.begin(), tgids.end());
  aging_.exited_processes += gone.size();
  // Aged entries of these processes first (they are older): re-keyed without the pid.
  std::vector<Entry> moving;
  for (auto it = aged_.begin(); it != aged_.end();) {
    if (it->second.exited || !gone.contains(it->second.sample.tgid)) {
      ++it;
      continue;
    }
    moving.push_back(std::move(it->second));
    it = aged_.erase(it);
  }
  std::sort(moving.begin(), moving.end(), [](const Entry& a, const Entry& b) { return a.first_seen < b.first_seen; });
  for (Entry& e : moving) {
    --aging_.aged;  // counted when it left the live view
    age_out(std::move(e), true);
  }
  // Live ones stay live (a COMMAND that just exited keeps its per-thread
  // split in the files) until idle, then merge without their pid.
  for (auto& [id, e] : live_)
    if (gone.contains(e.sample.tgid)) e.exited = true;
}

nlohmann::json StackTotals::aging_json() const {
  return {{"idle_intervals", idle_intervals_},
          {"live_entries", live_.size()},
          {"aged_entries", aged_.size()},
          {"entries_aged_out", aging_.aged},
          {"entries_merged", aging_.merged},
          {"exited_processes", aging_.exited_processes},
          {"max_aged_entries", max_aged_},
          {"entries_folded_into_other_stacks", aging_.folded},
          {"note",
           "stacks idle for idle_intervals intervals, or of exited processes, are merged by function "
           "(addresses and tids of the first kept; exited processes also across pids, the pid of the first "
           "kept); beyond max_aged_entries the lightest are folded into one \"[other stacks]\" frame per "
           "process; counts and times are exact"}};
}

std::vector<StackSample> StackTotals::stacks() const {
  std::vector<std::pair<const std::string*, const StackSample*>> order;
  order.reserve(live_.size() + aged_.size());
  for (const auto* table : {&live_, &aged_})
    for (const auto& [id, e] : *table) order.emplace_back(&id, &e.sample);
  // Hash order is no order: ties are broken by identity so files are stable.
  std::sort(order.begin(), order.end(), [](const auto& x, const auto& y) {
    const StackSample& a = *x.second;
    const StackSample& b = *y.second;
    if (a.tgid != b.tgid) return a.tgid < b.tgid;
    if (a.count != b.count) return a.count > b.count;
    if (a.off_ns != b.off_ns) return a.off_ns > b.off_ns;
    return *x.first < *y.first;
  });
  std::vector<StackSample> out;
  out.reserve(order.size());
  for (const auto& [id, s] : order) out.push_back(*s);
  return out;
}

uint64_t StackTotals::samples(StackKind kind) const {
  uint64_t n = 0;
  for (const auto* table : {&live_, &aged_})
    for (const auto& [id, e] : *table)
      if (e.sample.kind == kind) n += e.sample.count;
  return n;
}

bool is_block_io(const StackSample& s) { return s.kind == StackKind::kIo && s.detail.rfind("block ", 0) == 0; }

std::vector<flamegraph::FoldedStack> to_folded(const std::vector<StackSample>& stacks, FoldedWeight weight,
                                               double period_us) {
  // Merge identical lines (threads of a process, different addresses in the
  // same functions) so the file is one line per distinct path.
  std::map<std::vector<std::string>, uint64_t> merged;
  for (const StackSample& s : stacks) {
    uint64_t w = 0;
    switch (weight) {
      case FoldedWeight::kSamples:
        if (s.kind != StackKind::kOnCpu) continue;
        w = s.count;
        break;
      case FoldedWeight::kOffCpuMicros:
        if (s.kind != StackKind::kOffCpu) continue;
        w = s.off_ns / 1000;
        break;
      case FoldedWeight::kWallMicros:
        if (s.kind != StackKind::kOnCpu && s.kind != StackKind::kOffCpu) continue;
        w = s.kind == StackKind::kOnCpu ? static_cast<uint64_t>(static_cast<double>(s.count) * period_us)
                                        : s.off_ns / 1000;
        break;
      case FoldedWeight::kMemoryBytes:
        if (s.kind != StackKind::kMemory || !s.detail.empty()) continue;
        w = s.bytes;
        break;
      case FoldedWeight::kPageFaults:
        if (s.kind != StackKind::kMemory || s.detail != kPageFaultDetail) continue;
        w = s.count;
        break;
      case FoldedWeight::kIoBytes:
        if (s.kind != StackKind::kIo || is_block_io(s)) continue;
        w = s.bytes;
        break;
      case FoldedWeight::kBlockIoMicros:
        if (s.kind != StackKind::kIo || !is_block_io(s)) continue;
        w = s.latency_ns / 1000;
        break;
    }
    if (w == 0) continue;
    std::vector<std::string> frames;
    frames.reserve(s.frames.size() + 1);
    frames.push_back(s.process_name.empty() ? std::to_string(s.tgid) : s.process_name);
    for (auto it = s.frames.rbegin(); it != s.frames.rend(); ++it) {
      std::string name = it->display_name();
      if (it->kernel) name += "_[k]";
      else if (it->inlined) name += "_[i]";
      frames.push_back(std::move(name));
    }
    // What the I/O was ("write file", "block write") as the leaf, so one
    // function's socket and file traffic stay apart in the graph.
    if (s.kind == StackKind::kIo && !s.detail.empty()) frames.push_back("[" + s.detail + "]");
    merged[std::move(frames)] += w;
  }
  std::vector<flamegraph::FoldedStack> out;
  out.reserve(merged.size());
  for (auto& [frames, w] : merged) out.push_back({frames, w});
  return out;
}

}  // namespace stackwatch::profiler
