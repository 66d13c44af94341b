// Ranking suspect functions by the growth they explain themselves
// (see suspect_ranking.h).
#include "localize/suspect_ranking.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>

namespace stackwatch::localize {

namespace {

constexpr double kNsPerSecond = 1e9;
// The grown path follows a callee only while it carries at least this part
// of the suspect's growth: below that the path is one of many and says
// nothing about where the time went.
constexpr double kPathFollowShare = 0.2;
constexpr size_t kMaxPathLength = 24;
constexpr size_t kMaxBlockedEvidence = 3;
// A libc function's growth from truncated stacks goes to the probeable
// caller that makes at least this share of its calls in complete stacks.
constexpr double kAdoptShare = 0.8;

struct Rates {
  double on = 0;     // CPU s/s
  StateArray off{};  // blocked s/s by state
  double total() const { return on + sum(off); }
};

class RateReader {
 public:
  RateReader(const ProcessProfile& p, double hz)
      : on_scale_(p.seconds > 0 && hz > 0 ? 1.0 / (hz * p.seconds) : 0),
        off_scale_(p.seconds > 0 ? 1.0 / (kNsPerSecond * p.seconds) : 0) {}
  Rates inclusive(const CallGraph& g, const std::string& key) const {
    Rates r;
    if (auto v = g.find(key)) {
      const Weights& w = g.node(*v).weights;
      r.on = w.on_inclusive * on_scale_;
      for (size_t s = 0; s < kOffStates; ++s) r.off[s] = w.off_inclusive[s] * off_scale_;
    }
    return r;
  }
  double self_total(const CallGraph& g, Vertex v) const {
    const Weights& w = g.node(v).weights;
    return w.on_self * on_scale_ + sum(w.off_self) * off_scale_;
  }
  double edge(const CallEdge& e) const { return e.on * on_scale_ + sum(e.off) * off_scale_; }
  double off_scale() const { return off_scale_; }

 private:
  double on_scale_;
  double off_scale_;
};

// Rate of every call edge from `key` in graph g, by callee key.
std::unordered_map<std::string, double> out_edges(const CallGraph& g, const std::string& key, const RateReader& r) {
  std::unordered_map<std::string, double> out;
  auto v = g.find(key);
  if (!v) return out;
  for (auto [e, end] = boost::out_edges(*v, g.graph()); e != end; ++e)
    out[g.node(boost::target(*e, g.graph())).id.key()] += r.edge(g.graph()[*e]);
  return out;
}

// Edge growth from `key` to each callee, union of both graphs.
std::unordered_map<std::string, double> edge_growth(const CallGraph& base, const CallGraph& anom, const std::string& key,
                                                    const RateReader& rb, const RateReader& ra) {
  auto grown = out_edges(anom, key, ra);
  for (auto& [callee, rate] : out_edges(base, key, rb)) grown[callee] -= rate;
  return grown;
}

std::vector<std::string> grown_path(const ProcessProfile& base, const ProcessProfile& anom, const std::string& key,
                                    double growth, const RateReader& rb, const RateReader& ra) {
  std::vector<std::string> path;
  std::set<std::string> visited{key};
  std::string at = key;
  while (path.size() < kMaxPathLength) {
    auto grown = edge_growth(base.functions, anom.functions, at, rb, ra);
    std::string best;
    double best_growth = 0;
    for (auto& [callee, g] : grown)
      if (g > best_growth || (g == best_growth && !best.empty() && callee < best)) best = callee, best_growth = g;
    if (best.empty() || best_growth < kPathFollowShare * growth || visited.count(best)) break;
    visited.insert(best);
    auto v = anom.functions.find(best);
    path.push_back(v ? anom.functions.node(*v).id.name : best);
    at = best;
  }
  return path;
}

std::vector<BlockedEvidence> blocked_evidence(const ProcessProfile& base, const ProcessProfile& anom,
                                              const std::string& key, const RateReader& rb, const RateReader& ra) {
  std::map<std::string, BlockedEvidence> by_path;
  auto collect = [&](const CallGraph& g, const RateReader& r, bool anomaly) {
    auto v = g.find(key);
    if (!v) return;
    for (const auto& [path_key, kp] : g.node(*v).blocked_under) {
      BlockedEvidence& e = by_path[path_key];
      e.user_frame = kp.user_frame;
      e.kernel_frames = kp.kernel_frames;
      StateArray& into = anomaly ? e.anomaly : e.baseline;
      for (size_t s = 0; s < kOffStates; ++s) into[s] += kp.off_ns[s] * r.off_scale();
    }
  };
  collect(base.functions, rb, false);
  collect(anom.functions, ra, true);
  std::vector<BlockedEvidence> out;
  for (auto& [k, e] : by_path) out.push_back(std::move(e));
  bool any_growth = std::any_of(out.begin(), out.end(), [](const BlockedEvidence& e) { return e.growth() > 0; });
  // Largest growth first; when nothing grew (a CPU anomaly), largest anomaly rate.
  std::stable_sort(out.begin(), out.end(), [any_growth](const BlockedEvidence& a, const BlockedEvidence& b) {
    return any_growth ? a.growth() > b.growth() : sum(a.anomaly) > sum(b.anomaly);
  });
  if (any_growth)
    out.erase(std::remove_if(out.begin(), out.end(), [](const BlockedEvidence& e) { return e.growth() <= 0; }),
              out.end());
  if (out.size() > kMaxBlockedEvidence) out.resize(kMaxBlockedEvidence);
  return out;
}

nlohmann::json states_json(const StateArray& a) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t s = 1; s < kOffStates; ++s) j[to_string(static_cast<OffCpuState>(s))] = a[s];
  return j;
}

StateArray states_from_json(const nlohmann::json& j) {
  StateArray a{};
  if (!j.is_object()) return a;
  for (auto& [k, v] : j.items()) {
    auto s = static_cast<size_t>(off_cpu_state_from_string(k));
    if (s < kOffStates && v.is_number()) a[s] = v.get<double>();
  }
  return a;
}

// Truncated stacks (an unwinder that stopped inside libc) leave a libc
// function as the owner of their time in the probe-target view. When the
// complete stacks show one probeable caller making nearly all the calls to
// it, and that caller is a suspect too, the growth is that caller's: merge.
void adopt_truncated_libc_growth(const ProcessProfile& anomaly, const RateReader& ra, std::vector<Suspect>& out) {
  const Graph& g = anomaly.functions.graph();
  std::vector<bool> merged(out.size(), false);
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].probeable) continue;
    auto v = anomaly.functions.find(out[i].function.key());
    if (!v || !g[*v].libc) continue;
    std::map<std::string, double> callers;
    double total = 0;
    for (auto [e, end] = boost::in_edges(*v, g); e != end; ++e) {
      const FunctionNode& caller = g[boost::source(*e, g)];
      if (!caller.probeable()) continue;
      double w = ra.edge(g[*e]);
      callers[caller.id.key()] += w;
      total += w;
    }
    auto best = std::max_element(callers.begin(), callers.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
    if (total <= 0 || best == callers.end() || best->second < kAdoptShare * total) continue;
    for (size_t j = 0; j < out.size(); ++j) {
      if (j == i || merged[j] || out[j].function.key() != best->first) continue;
      Suspect& adopter = out[j];
      adopter.score += out[i].score;
      adopter.share = std::min(1.0, adopter.share + out[i].share);
      for (const BlockedEvidence& b : out[i].blocked) {
        auto same = [&](const BlockedEvidence& a) { return a.user_frame == b.user_frame && a.kernel_frames == b.kernel_frames; };
        auto it = std::find_if(adopter.blocked.begin(), adopter.blocked.end(), same);
        if (it == adopter.blocked.end()) {
          adopter.blocked.push_back(b);
        } else {
          for (size_t st = 0; st < kOffStates; ++st) it->baseline[st] += b.baseline[st], it->anomaly[st] += b.anomaly[st];
        }
      }
      std::stable_sort(adopter.blocked.begin(), adopter.blocked.end(),
                       [](const BlockedEvidence& a, const BlockedEvidence& b) { return a.growth() > b.growth(); });
      if (adopter.blocked.size() > kMaxBlockedEvidence) adopter.blocked.resize(kMaxBlockedEvidence);
      merged[i] = true;
      break;
    }
  }
  std::vector<Suspect> kept;
  for (size_t i = 0; i < out.size(); ++i)
    if (!merged[i]) kept.push_back(std::move(out[i]));
  out = std::move(kept);
}

}  // namespace

ProcessProfile build_profile(const std::vector<StackSample>& stacks, const ProcessFilter& filter, double seconds) {
  ProcessProfile p;
  p.seconds = seconds;
  for (const StackSample& s : stacks) {
    if (!filter.matches(s)) continue;
    p.functions.add(s);
    p.targets.add(s);
  }
  return p;
}

std::vector<Suspect> rank_suspects(const ProcessProfile& baseline, const ProcessProfile& anomaly,
                                   const RankOptions& options) {
  RateReader rb(baseline, options.sample_hz), ra(anomaly, options.sample_hz);

  // Every target function of either set.
  std::vector<std::string> keys;
  std::set<std::string> seen;
  for (const CallGraph* g : {&anomaly.targets, &baseline.targets})
    for (auto [v, end] = boost::vertices(g->graph()); v != end; ++v)
      if (seen.insert(g->node(*v).id.key()).second) keys.push_back(g->node(*v).id.key());

  // Total positive self growth: every stack's time is the self time of
  // exactly one target (or of none when no frame can be probed).
  double total = 0;
  for (const std::string& k : keys) {
    double a = 0, b = 0;
    if (auto v = anomaly.targets.find(k)) a = ra.self_total(anomaly.targets, *v);
    if (auto v = baseline.targets.find(k)) b = rb.self_total(baseline.targets, *v);
    total += std::max(0.0, a - b);
  }
  if (total <= 0) return {};

  std::vector<Suspect> out;
  for (const std::string& k : keys) {
    Rates a = ra.inclusive(anomaly.targets, k), b = rb.inclusive(baseline.targets, k);
    double growth = a.total() - b.total();
    if (growth <= 0) continue;
    double largest_edge = 0;
    for (auto& [callee, g] : edge_growth(baseline.targets, anomaly.targets, k, rb, ra))
      largest_edge = std::max(largest_edge, g);
    double own = growth - largest_edge;
    if (own <= 0 || own / total < options.min_share) continue;

    const CallGraph& g = anomaly.targets.find(k) ? anomaly.targets : baseline.targets;
    const FunctionNode& n = g.node(*g.find(k));
    Suspect s;
    s.function = n.id;
    s.module_path = n.module_path;
    s.probeable = n.probeable();
    s.score = own;
    s.share = std::min(1.0, own / total);
    s.inclusive_share = std::min(1.0, growth / total);
    s.baseline_on = b.on;
    s.anomaly_on = a.on;
    s.baseline_off = b.off;
    s.anomaly_off = a.off;
    s.total_growth = total;
    s.grown_path = grown_path(baseline, anomaly, k, growth, rb, ra);
    s.blocked = blocked_evidence(baseline, anomaly, k, rb, ra);
    out.push_back(std::move(s));
  }
  adopt_truncated_libc_growth(anomaly, ra, out);
  std::stable_sort(out.begin(), out.end(), [](const Suspect& x, const Suspect& y) {
    if (x.score != y.score) return x.score > y.score;
    return x.function.key() < y.function.key();
  });
  if (out.size() > options.top) out.resize(options.top);
  return out;
}

std::vector<Suspect> rank_suspects(const std::vector<StackSample>& baseline, double baseline_seconds,
                                   const std::vector<StackSample>& anomaly, double anomaly_seconds,
                                   const ProcessFilter& process, const RankOptions& options) {
  ProcessProfile b = build_profile(baseline, process, baseline_seconds);
  ProcessProfile a = build_profile(anomaly, process, anomaly_seconds);
  auto suspects = rank_suspects(b, a, options);
  // Name the process from its samples when the filter gave only a tgid.
  std::string name = process.name;
  uint32_t tgid = process.tgid;
  for (const StackSample& s : anomaly)
    if (process.matches(s)) {
      if (name.empty()) name = s.process_name;
      if (tgid == 0) tgid = s.tgid;
      break;
    }
  for (Suspect& s : suspects) {
    s.process = name;
    s.tgid = tgid;
  }
  return suspects;
}

nlohmann::json Suspect::to_json() const {
  nlohmann::json blocked_j = nlohmann::json::array();
  for (const BlockedEvidence& e : blocked)
    blocked_j.push_back({{"user_frame", e.user_frame},
                         {"kernel_frames", e.kernel_frames},
                         {"baseline_s_per_s", states_json(e.baseline)},
                         {"anomaly_s_per_s", states_json(e.anomaly)}});
  return {{"process", process},
          {"tgid", tgid},
          {"function", function.name},
          {"module", function.module},
          {"module_path", module_path},
          {"probeable", probeable},
          {"score_s_per_s", score},
          {"share", share},
          {"inclusive_share", inclusive_share},
          {"on_cpu_s_per_s", {{"baseline", baseline_on}, {"anomaly", anomaly_on}}},
          {"blocked_s_per_s", {{"baseline", states_json(baseline_off)}, {"anomaly", states_json(anomaly_off)}}},
          {"grown_path", grown_path},
          {"blocked_under", blocked_j},
          {"process_growth_s_per_s", total_growth}};
}

Suspect suspect_from_json(const nlohmann::json& j) {
  Suspect s;
  s.process = j.value("process", "");
  s.tgid = j.value("tgid", 0u);
  s.function = {j.value("module", ""), j.value("function", "")};
  s.module_path = j.value("module_path", "");
  s.probeable = j.value("probeable", false);
  s.score = j.value("score_s_per_s", 0.0);
  s.share = j.value("share", 0.0);
  s.inclusive_share = j.value("inclusive_share", 0.0);
  if (auto on = j.find("on_cpu_s_per_s"); on != j.end()) {
    s.baseline_on = on->value("baseline", 0.0);
    s.anomaly_on = on->value("anomaly", 0.0);
  }
  if (auto off = j.find("blocked_s_per_s"); off != j.end()) {
    s.baseline_off = states_from_json(off->value("baseline", nlohmann::json{}));
    s.anomaly_off = states_from_json(off->value("anomaly", nlohmann::json{}));
  }
  s.grown_path = j.value("grown_path", std::vector<std::string>{});
  for (const auto& e : j.value("blocked_under", nlohmann::json::array())) {
    BlockedEvidence b;
    b.user_frame = e.value("user_frame", "");
    b.kernel_frames = e.value("kernel_frames", std::vector<std::string>{});
    b.baseline = states_from_json(e.value("baseline_s_per_s", nlohmann::json{}));
    b.anomaly = states_from_json(e.value("anomaly_s_per_s", nlohmann::json{}));
    s.blocked.push_back(std::move(b));
  }
  s.total_growth = j.value("process_growth_s_per_s", 0.0);
  return s;
}

}  // namespace stackwatch::localize
