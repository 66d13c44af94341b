// Choosing the functions of a latency baseline (see baseline_candidates.h).
#include "localize/baseline_candidates.h"

#include <algorithm>
#include <map>

namespace stackwatch::localize {

namespace {

constexpr double kNsPerSecond = 1e9;

bool time_stack(const StackSample& s) { return s.kind == StackKind::kOnCpu || s.kind == StackKind::kOffCpu; }

// Demand: time that wants a CPU or waits on the disk; the rest of the
// blocked time (interruptible sleeps: idle loops, lock and network waits)
// only breaks ties, or idle threads would come first.
struct Demand {
  double busy = 0;
  double waiting = 0;
  bool operator>(const Demand& o) const { return busy != o.busy ? busy > o.busy : waiting > o.waiting; }
};

Demand demand_of(double on_samples, const StateArray& off_ns, double sample_hz, double seconds) {
  Demand d;
  double on_scale = sample_hz > 0 && seconds > 0 ? 1.0 / (sample_hz * seconds) : 0;
  double off_scale = seconds > 0 ? 1.0 / (kNsPerSecond * seconds) : 0;
  d.busy = on_samples * on_scale + (off_ns[static_cast<size_t>(OffCpuState::kRunning)] +
                                    off_ns[static_cast<size_t>(OffCpuState::kUninterruptible)]) *
                                       off_scale;
  d.waiting = (off_ns[static_cast<size_t>(OffCpuState::kInterruptible)] + off_ns[static_cast<size_t>(OffCpuState::kOther)]) *
              off_scale;
  return d;
}

}  // namespace

std::vector<uint32_t> busiest_processes(const std::vector<StackSample>& stacks, double sample_hz, size_t max) {
  std::map<uint32_t, std::pair<double, StateArray>> by_process;
  for (const StackSample& s : stacks) {
    if (!time_stack(s)) continue;
    auto& [on, off] = by_process[s.tgid];
    if (s.kind == StackKind::kOnCpu)
      on += static_cast<double>(s.count);
    else
      off[std::min<size_t>(static_cast<size_t>(s.off_state), kOffStates - 1)] += static_cast<double>(s.off_ns);
  }
  std::vector<std::pair<Demand, uint32_t>> ranked;
  for (auto& [tgid, w] : by_process) ranked.push_back({demand_of(w.first, w.second, sample_hz, 1), tgid});
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<uint32_t> out;
  for (const auto& [d, tgid] : ranked) {
    if (out.size() >= max) break;
    out.push_back(tgid);
  }
  return out;
}

std::vector<Suspect> baseline_candidates(const std::vector<StackSample>& stacks, double seconds, uint32_t tgid,
                                         double sample_hz, size_t max, const std::set<std::string>& excluded) {
  CallGraph targets(GraphView::kProbeTargets);
  std::string process;
  for (const StackSample& s : stacks)
    if (s.tgid == tgid && time_stack(s)) {
      targets.add(s);
      process = s.process_name;  // the latest: a COMMAND is named after its exec
    }
  std::vector<std::pair<Demand, Vertex>> ranked;
  for (auto [v, end] = boost::vertices(targets.graph()); v != end; ++v) {
    const FunctionNode& n = targets.node(*v);
    if (!n.probeable() || excluded.count(n.id.key())) continue;
    ranked.push_back({demand_of(n.weights.on_inclusive, n.weights.off_inclusive, sample_hz, seconds), *v});
  }
  std::stable_sort(ranked.begin(), ranked.end(), [&](const auto& a, const auto& b) {
    if (a.first > b.first) return true;
    if (b.first > a.first) return false;
    return targets.node(a.second).id.key() < targets.node(b.second).id.key();
  });
  std::vector<Suspect> out;
  for (const auto& [d, v] : ranked) {
    if (out.size() >= max) break;
    const FunctionNode& n = targets.node(v);
    Suspect s;
    s.process = process;
    s.tgid = tgid;
    s.function = n.id;
    s.module_path = n.module_path;
    s.probeable = true;
    s.score = d.busy + d.waiting;
    out.push_back(std::move(s));
  }
  return out;
}

bool sampled_in(const std::vector<StackSample>& stacks, uint32_t tgid, const FunctionId& id) {
  for (const StackSample& s : stacks) {
    if (s.tgid != tgid || !time_stack(s)) continue;
    for (const Frame& f : s.frames)
      if (!f.kernel && function_id(f) == id) return true;
  }
  return false;
}

}  // namespace stackwatch::localize
