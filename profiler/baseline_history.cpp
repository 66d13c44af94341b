// The live localizer's compact history of recent intervals (see baseline_history.h).
#include "profiler/baseline_history.h"

namespace stackwatch::profiler {

namespace {

size_t mix(size_t seed, uint64_t v) {
  // boost::hash_combine's step, on 64 bits.
  return seed ^ (v + 0x9e3779b97f4a7c15ULL + (seed << 12) + (seed >> 4));
}

}  // namespace

size_t BaselineHistory::FrameHash::operator()(const CompactFrame& f) const {
  size_t h = mix(f.function, f.module);
  h = mix(h, f.module_offset);
  return mix(h, (f.kernel ? 1u : 0u) | (f.inlined ? 2u : 0u));
}

size_t BaselineHistory::StackHash::operator()(const std::vector<uint32_t>& frames) const {
  size_t h = frames.size();
  for (uint32_t f : frames) h = mix(h, f);
  return h;
}

BaselineHistory::CompactSample BaselineHistory::compact(const StackSample& s) {
  CompactSample c;
  c.tgid = s.tgid;
  c.tid = s.tid;
  c.process_name = strings_.acquire(s.process_name);
  c.thread_name = strings_.acquire(s.thread_name);
  c.detail = strings_.acquire(s.detail);
  c.label = s.label ? strings_.acquire(*s.label) : kNoLabel;
  c.kind = s.kind;
  c.off_state = s.off_state;
  c.count = s.count;
  c.off_ns = s.off_ns;
  std::vector<uint32_t> ids;
  ids.reserve(s.frames.size());
  for (const Frame& f : s.frames) {
    CompactFrame cf{strings_.acquire(f.function), strings_.acquire(f.module), f.module_offset, f.kernel, f.inlined};
    bool inserted = false;
    ids.push_back(frames_.acquire(cf, &inserted));
    if (!inserted) {  // the frame already holds its strings
      strings_.release(cf.function);
      strings_.release(cf.module);
    }
  }
  bool inserted = false;
  c.stack = stacks_.acquire(ids, &inserted);
  if (!inserted)  // the stack already holds its frames
    for (uint32_t id : ids) frames_.release(id);
  return c;
}

void BaselineHistory::release(const CompactSample& c) {
  strings_.release(c.process_name);
  strings_.release(c.thread_name);
  strings_.release(c.detail);
  if (c.label != kNoLabel) strings_.release(c.label);
  std::vector<uint32_t> ids;
  if (!stacks_.release(c.stack, &ids)) return;
  for (uint32_t id : ids) {
    CompactFrame cf{};
    if (!frames_.release(id, &cf)) continue;
    strings_.release(cf.function);
    strings_.release(cf.module);
  }
}

StackSample BaselineHistory::expand(const CompactSample& c) const {
  StackSample s;
  s.tgid = c.tgid;
  s.tid = c.tid;
  s.process_name = strings_.at(c.process_name);
  s.thread_name = strings_.at(c.thread_name);
  s.detail = strings_.at(c.detail);
  if (c.label != kNoLabel) s.label = strings_.at(c.label);
  s.kind = c.kind;
  s.off_state = c.off_state;
  s.count = c.count;
  s.off_ns = c.off_ns;
  const std::vector<uint32_t>& ids = stacks_.at(c.stack);
  s.frames.resize(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const CompactFrame& cf = frames_.at(ids[i]);
    Frame& f = s.frames[i];
    f.function = strings_.at(cf.function);
    f.module = strings_.at(cf.module);
    f.module_offset = cf.module_offset;
    f.kernel = cf.kernel;
    f.inlined = cf.inlined;
  }
  return s;
}

void BaselineHistory::add(uint64_t index, double seconds, bool anomalous, const std::vector<StackSample>& stacks) {
  Entry e{index, seconds, anomalous, {}};
  if (!anomalous) {
    for (const StackSample& s : stacks)
      if (s.kind == StackKind::kOnCpu || s.kind == StackKind::kOffCpu) e.samples.push_back(compact(s));
    e.samples.shrink_to_fit();
  }
  intervals_.push_back(std::move(e));
  while (intervals_.size() > capacity_) {
    for (const CompactSample& c : intervals_.front().samples) release(c);
    intervals_.pop_front();
  }
}

BaselineHistory::Baseline BaselineHistory::baseline(uint64_t until, uint32_t tgid) const {
  Baseline b;
  for (const Entry& e : intervals_) {
    if (e.anomalous || e.index >= until) continue;
    for (const CompactSample& c : e.samples)
      if (tgid == 0 || c.tgid == tgid) b.stacks.push_back(expand(c));
    b.seconds += e.seconds;
    b.intervals.push_back(e.index);
  }
  return b;
}

size_t BaselineHistory::normal_intervals() const {
  size_t n = 0;
  for (const Entry& e : intervals_) n += !e.anomalous;
  return n;
}

size_t BaselineHistory::samples() const {
  size_t n = 0;
  for (const Entry& e : intervals_) n += e.samples.size();
  return n;
}

size_t BaselineHistory::memory_bytes() const {
  // A hash node: the value, the id, the next pointer and the cached hash,
  // rounded up by malloc; plus a bucket pointer and the id arrays' slots.
  constexpr size_t kNode = 16 + 2 * sizeof(void*);
  constexpr size_t kSlot = sizeof(void*) + 2 * sizeof(uint32_t);
  size_t bytes = 0;
  for (const Entry& e : intervals_) bytes += sizeof(Entry) + e.samples.capacity() * sizeof(CompactSample);
  auto table = [&](const auto& t, size_t value_bytes) {
    return t.size() * (kNode + value_bytes) + t.capacity() * kSlot + t.bucket_count() * sizeof(void*);
  };
  size_t string_heap = 0, stack_heap = 0;
  strings_.for_each([&](const std::string& v) { string_heap += v.capacity() > 15 ? v.capacity() + 1 : 0; });
  stacks_.for_each([&](const std::vector<uint32_t>& v) { stack_heap += v.capacity() * sizeof(uint32_t); });
  bytes += table(strings_, sizeof(std::string)) + string_heap;
  bytes += table(frames_, sizeof(CompactFrame));
  bytes += table(stacks_, sizeof(std::vector<uint32_t>)) + stack_heap;
  return bytes;
}

}  // namespace stackwatch::profiler
