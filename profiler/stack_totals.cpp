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

static std::string aged_header(const StackSample& s, bool exited) {
  std::string id;
  id += exited ? std::string("x") : std::to_string(s.tgid);
  id += '/';
  id += to_string(s.kind);
  id += '/';
  id += to_string(s.off_state);
  id += '/' + s.detail + '/' + s.process_name + '/' + s.thread_name;
  return id;
}

static void append_aged_frame(std::string& id, const Frame& f) {
  id += f.kernel ? "|k" : (f.inlined ? "|i" : "|u");
  id += f.module;
  id += '!';
  if (f.function.empty())
    id += std::to_string(f.module_offset);  // same code in every process, unlike the address
  else
    id += f.function;
}

std::string aged_identity(const StackSample& s, bool exited) {
  std::string id = aged_header(s, exited);
  for (const Frame& f : s.frames) append_aged_frame(id, f);
  return id;
}

StackTotals::AgedKey StackTotals::aged_key(const Entry& e, bool exited) const {
  std::string id = aged_header(e.sample, exited);
  id.reserve(id.size() + e.frame_ids.size() * 48);
  for (FrameTable::Id f : e.frame_ids) append_aged_frame(id, frames_[f]);
  // Two independent 64-bit hashes: the library's and FNV-1a.
  uint64_t fnv = 1469598103934665603ull;
  for (unsigned char c : id) fnv = (fnv ^ c) * 1099511628211ull;
  return AgedKey{std::hash<std::string>{}(id), fnv};
}

// The live identity: as stack_identity(), with the interned frames' ids (an
// id names one exact frame while any stack holds it) in place of their text.
static std::string live_key(const StackSample& s, const std::vector<FrameTable::Id>& frame_ids) {
  std::string id = std::to_string(s.tgid) + '/' + std::to_string(s.tid) + '/' + to_string(s.kind) + '/' +
                   to_string(s.off_state) + '/' + s.detail + '/' + s.process_name + '/' + s.thread_name + '|';
  id.append(reinterpret_cast<const char*>(frame_ids.data()), frame_ids.size() * sizeof(FrameTable::Id));
  return id;
}

void StackTotals::release_frames(Entry& e) {
  for (FrameTable::Id f : e.frame_ids) frames_.release(f);
  e.frame_ids.clear();
}

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
  std::vector<FrameTable::Id> ids;
  for (const StackSample& s : interval_stacks) {
    ids.clear();
    for (const Frame& f : s.frames) ids.push_back(frames_.intern(f));
    std::string key = live_key(s, ids);
    auto it = live_.find(key);
    if (it == live_.end()) {
      Entry e;
      e.sample.tgid = s.tgid;
      e.sample.tid = s.tid;
      e.sample.process_name = s.process_name;
      e.sample.thread_name = s.thread_name;
      e.sample.kind = s.kind;
      e.sample.off_state = s.off_state;
      e.sample.detail = s.detail;
      sum_into(e.sample, s);  // BPF stack ids are left out: they mean nothing across intervals
      e.frame_ids = ids;
      e.last_interval = interval_;
      e.first_seen = inserted_++;
      live_.emplace(std::move(key), std::move(e));
    } else {
      for (FrameTable::Id f : ids) frames_.release(f);  // the entry holds them already
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

// A rough common scale for ranking: a sample, a blocked millisecond.
static double weight(const StackSample& s) {
  return static_cast<double>(s.count) + static_cast<double>(s.off_ns + s.latency_ns) / 1e6 +
         static_cast<double>(s.bytes) / 4096;
}

void StackTotals::fold_tail() {
  if (aged_.size() <= max_aged_) return;
  // Down to three quarters, so this runs every few intervals, not every one.
  size_t target = max_aged_ - max_aged_ / 4;
  std::vector<AgedMap::iterator> candidates;
  for (auto it = aged_.begin(); it != aged_.end(); ++it)
    if (!(it->second.frame_ids.size() == 1 && frames_[it->second.frame_ids[0]].function == kOtherStacks))
      candidates.push_back(it);
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
  Frame other;
  other.function = kOtherStacks;
  for (Entry& e : folding) {
    release_frames(e);
    e.frame_ids.assign(1, frames_.intern(other));
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
  auto [it, inserted] = aged_.try_emplace(aged_key(entry, exited));
  if (inserted) {
    entry.exited = exited;
    it->second = std::move(entry);
    return;
  }
  ++aging_.merged;
  release_frames(entry);  // the first of the merged stacks names them
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
          {"distinct_frames", frames_.size()},
          {"note",
           "stacks idle for idle_intervals intervals, or of exited processes, are merged by function "
           "(addresses and tids of the first kept; exited processes also across pids, the pid of the first "
           "kept); beyond max_aged_entries the lightest are folded into one \"[other stacks]\" frame per "
           "process; counts and times are exact"}};
}

// Ties of the output order are broken by what the stacks are (thread, kind,
// names, then the frames by address and name), never by hash or insertion
// order, so files are stable. No identity strings are built for it.
static bool identity_less(const StackSample& a, const std::vector<FrameTable::Id>& fa, const StackSample& b,
                          const std::vector<FrameTable::Id>& fb, const FrameTable& frames) {
  if (a.tid != b.tid) return a.tid < b.tid;
  if (a.kind != b.kind) return a.kind < b.kind;
  if (a.off_state != b.off_state) return a.off_state < b.off_state;
  if (int c = a.detail.compare(b.detail)) return c < 0;
  if (int c = a.process_name.compare(b.process_name)) return c < 0;
  if (int c = a.thread_name.compare(b.thread_name)) return c < 0;
  for (size_t i = 0; i < fa.size() && i < fb.size(); ++i) {
    if (fa[i] == fb[i]) continue;
    const Frame& x = frames[fa[i]];
    const Frame& y = frames[fb[i]];
    if (x.address != y.address) return x.address < y.address;
    const std::string& nx = x.function.empty() ? x.module : x.function;
    const std::string& ny = y.function.empty() ? y.module : y.function;
    if (int c = nx.compare(ny)) return c < 0;
  }
  return fa.size() < fb.size();
}

StackTotals::Ordered StackTotals::ordered() const {
  Ordered out;
  out.frames_ = &frames_;
  out.entries_.reserve(live_.size() + aged_.size());
  for (const auto& [id, e] : live_) out.entries_.push_back(&e);
  for (const auto& [id, e] : aged_) out.entries_.push_back(&e);
  std::sort(out.entries_.begin(), out.entries_.end(), [this](const Entry* x, const Entry* y) {
    const StackSample& a = x->sample;
    const StackSample& b = y->sample;
    if (a.tgid != b.tgid) return a.tgid < b.tgid;
    if (a.count != b.count) return a.count > b.count;
    if (a.off_ns != b.off_ns) return a.off_ns > b.off_ns;
    if (identity_less(a, x->frame_ids, b, y->frame_ids, frames_)) return true;
    if (identity_less(b, y->frame_ids, a, x->frame_ids, frames_)) return false;
    return x->first_seen < y->first_seen;  // alike but apart (a line apart, aged and live): first first
  });
  return out;
}

const StackSample& StackTotals::Ordered::header(size_t i) const { return entries_[i]->sample; }

const StackSample& StackTotals::Ordered::get(size_t i, StackSample& scratch) const {
  const Entry& e = *entries_[i];
  scratch = e.sample;
  scratch.frames.resize(e.frame_ids.size());
  for (size_t k = 0; k < e.frame_ids.size(); ++k) scratch.frames[k] = (*frames_)[e.frame_ids[k]];
  return scratch;
}

std::vector<StackSample> StackTotals::stacks() const {
  Ordered order = ordered();
  std::vector<StackSample> out(order.size());
  for (size_t i = 0; i < order.size(); ++i) order.get(i, out[i]);
  return out;
}

uint64_t StackTotals::samples(StackKind kind) const {
  uint64_t n = 0;
  for (const auto& [id, e] : live_)
    if (e.sample.kind == kind) n += e.sample.count;
  for (const auto& [id, e] : aged_)
    if (e.sample.kind == kind) n += e.sample.count;
  return n;
}

bool is_block_io(const StackSample& s) { return s.kind == StackKind::kIo && s.detail.rfind("block ", 0) == 0; }

std::vector<flamegraph::FoldedStack> to_folded(const std::vector<StackSample>& stacks, FoldedWeight weight,
                                               double period_us) {
  return to_folded(StackPointers(stacks), weight, period_us);
}

std::vector<flamegraph::FoldedStack> to_folded(const StackSource& stacks, FoldedWeight weight, double period_us) {
  // Merge identical lines (threads of a process, different addresses in the
  // same functions) so the file is one line per distinct path.
  std::map<std::vector<std::string>, uint64_t> merged;
  StackSample scratch;
  for (size_t i = 0; i < stacks.size(); ++i) {
    const StackSample& h = stacks.header(i);  // which view, and the weight, need no frames
    uint64_t w = 0;
    switch (weight) {
      case FoldedWeight::kSamples:
        if (h.kind != StackKind::kOnCpu) continue;
        w = h.count;
        break;
      case FoldedWeight::kOffCpuMicros:
        if (h.kind != StackKind::kOffCpu) continue;
        w = h.off_ns / 1000;
        break;
      case FoldedWeight::kWallMicros:
        if (h.kind != StackKind::kOnCpu && h.kind != StackKind::kOffCpu) continue;
        w = h.kind == StackKind::kOnCpu ? static_cast<uint64_t>(static_cast<double>(h.count) * period_us)
                                        : h.off_ns / 1000;
        break;
      case FoldedWeight::kMemoryBytes:
        if (h.kind != StackKind::kMemory || !h.detail.empty()) continue;
        w = h.bytes;
        break;
      case FoldedWeight::kPageFaults:
        if (h.kind != StackKind::kMemory || h.detail != kPageFaultDetail) continue;
        w = h.count;
        break;
      case FoldedWeight::kIoBytes:
        if (h.kind != StackKind::kIo || is_block_io(h)) continue;
        w = h.bytes;
        break;
      case FoldedWeight::kBlockIoMicros:
        if (h.kind != StackKind::kIo || !is_block_io(h)) continue;
        w = h.latency_ns / 1000;
        break;
    }
    if (w == 0) continue;
    const StackSample& s = stacks.get(i, scratch);
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
  // Moved out node by node: the keys are never copied.
  while (!merged.empty()) {
    auto node = merged.extract(merged.begin());
    out.push_back({std::move(node.key()), node.mapped()});
  }
  return out;
}

}  // namespace stackwatch::profiler
