// Recording totals and folded views (see stack_totals.h).
#include "profiler/stack_totals.h"

#include <algorithm>
#include <map>

#include "localize/interval_monitor.h"

namespace stackwatch::profiler {

std::string stack_identity(const StackSample& s) {
  std::string id;
  id.reserve(64 + s.frames.size() * 32);
  id += std::to_string(s.tgid) + '/' + std::to_string(s.tid) + '/' + to_string(s.kind) + '/' +
        to_string(s.off_state) + '/' + s.process_name + '/' + s.thread_name;
  for (const Frame& f : s.frames) {
    id += '|';
    id += std::to_string(f.address);
    id += ':';
    id += f.function.empty() ? f.module : f.function;
  }
  return id;
}

void StackTotals::add(const std::vector<StackSample>& interval_stacks) {
  for (const StackSample& s : interval_stacks) {
    std::string id = stack_identity(s);
    auto it = index_.find(id);
    if (it == index_.end()) {
      index_.emplace(std::move(id), stacks_.size());
      stacks_.push_back(s);
      stacks_.back().kernel_stack_id = -1;  // BPF ids mean nothing across intervals
      stacks_.back().user_stack_id = -1;
    } else {
      StackSample& t = stacks_[it->second];
      t.count += s.count;
      t.off_ns += s.off_ns;
      if (s.label) localize::add_label(t.label, *s.label);
    }
  }
}

std::vector<StackSample> StackTotals::stacks() const {
  std::vector<StackSample> out = stacks_;
  std::stable_sort(out.begin(), out.end(), [](const StackSample& a, const StackSample& b) {
    if (a.tgid != b.tgid) return a.tgid < b.tgid;
    return a.count > b.count;
  });
  return out;
}

uint64_t StackTotals::samples(StackKind kind) const {
  uint64_t n = 0;
  for (const StackSample& s : stacks_)
    if (s.kind == kind) n += s.count;
  return n;
}

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
        w = s.kind == StackKind::kOnCpu ? static_cast<uint64_t>(static_cast<double>(s.count) * period_us)
                                        : s.off_ns / 1000;
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
    merged[std::move(frames)] += w;
  }
  std::vector<flamegraph::FoldedStack> out;
  out.reserve(merged.size());
  for (auto& [frames, w] : merged) out.push_back({frames, w});
  return out;
}

}  // namespace stackwatch::profiler
