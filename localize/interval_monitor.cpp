// The live detector: series bookkeeping, grouping of flags into anomalies,
// labels (see interval_monitor.h).
#include "localize/interval_monitor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace stackwatch::localize {

namespace {

// Effect gates (see interval_monitor.h): the smallest change worth a report.
constexpr double kMinShareOfSamples = 0.01;
constexpr double kMinSamples = 3.0;
constexpr double kMinBlockedShareOfInterval = 0.01;
// The interval log must not forget a stack before this monitor does: this
// monitor's records carry frames only for the stacks it does not know.
static_assert(IntervalLogWriter::kForgetAfter > IntervalMonitor::kStaleIntervals + IntervalMonitor::kForgetEvery);
// Mix contributors below this share of the divergence are not labelled:
// the other stacks' shares shrink when one grows, which is not their doing.
constexpr double kMinLabelShare = 0.1;

int kind_index(StackKind kind) { return kind == StackKind::kOnCpu ? 0 : 1; }

std::string format_number(double v) {
  char buf[64];
  if (std::abs(v) >= 1e6 || (v != 0 && std::abs(v) < 1e-3))
    std::snprintf(buf, sizeof buf, "%.3g", v);
  else
    std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string format_percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f%%", share * 100.0);
  return buf;
}

}  // namespace

std::string format_unix_ns(int64_t unix_ns) {
  std::time_t seconds = static_cast<std::time_t>(unix_ns / 1000000000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string anomaly_label(const Anomaly& a) {
  return a.kind + "@" + std::to_string(a.interval_index) + " " + format_unix_ns(a.start_unix_ns);
}

void add_label(std::optional<std::string>& label, const std::string& add) {
  // Labels are "; "-separated entries; `add` may hold several. Each entry is
  // appended unless already there, so merging is idempotent.
  size_t from = 0;
  while (from < add.size()) {
    size_t to = add.find("; ", from);
    if (to == std::string::npos) to = add.size();
    std::string entry = add.substr(from, to - from);
    from = to + 2;
    if (entry.empty()) continue;
    if (!label || label->empty()) {
      label = entry;
      continue;
    }
    bool present = false;
    for (size_t start = 0; start <= label->size() && !present;) {
      size_t end = label->find("; ", start);
      if (end == std::string::npos) end = label->size();
      present = label->compare(start, end - start, entry) == 0;
      start = end + 2;
    }
    if (!present) *label += "; " + entry;
  }
}

nlohmann::json anomaly_to_json(const Anomaly& a) {
  nlohmann::json top = nlohmann::json::array();
  for (const Contributor& c : a.top) top.push_back({{"series", c.series}, {"contribution", c.contribution}});
  return {{"interval", a.interval_index},
          {"start_unix_ns", a.start_unix_ns},
          {"end_unix_ns", a.end_unix_ns},
          {"time", format_unix_ns(a.start_unix_ns)},
          {"kind", a.kind},
          {"score", a.score},
          {"threshold", a.threshold},
          {"top", std::move(top)},
          {"description", a.description}};
}

IntervalMonitor::IntervalMonitor(const MonitorConfig& config) : config_(config) {
  for (auto& mix : mix_) mix = std::make_unique<StackMixDetector>(config.risk, config.top_k);
}

IntervalMonitor::~IntervalMonitor() = default;

uint32_t IntervalMonitor::add_series(std::string name, Category category, StackKind kind,
                                     SeriesKind series_kind) {
  auto id = static_cast<uint32_t>(series_.size());
  series_.push_back(Series{std::move(name), category, kind,
                           UnivariateDetector(UnivariateConfig{config_.risk, series_kind, Direction::kBoth})});
  values_.push_back(0.0);
  if (category != Category::kLoad) {
    // A stack, function or process that did not exist before had weight 0 in
    // every earlier interval: give its detector that history.
    uint64_t earlier = std::min<uint64_t>(intervals_ - 1, UnivariateDetector::kWarmup);
    for (uint64_t i = 0; i < earlier; ++i) series_.back().detector.observe(0.0);
  }
  return id;
}

uint32_t IntervalMonitor::series_for(std::unordered_map<std::string, uint32_t>& index, const std::string& name,
                                     Category category, StackKind kind) {
  auto it = index.find(name);
  if (it != index.end()) return it->second;
  SeriesKind series_kind = category == Category::kLoad ? SeriesKind::kAuto : SeriesKind::kCount;
  uint32_t id = add_series(name, category, kind, series_kind);
  index.emplace(name, id);
  return id;
}

uint32_t IntervalMonitor::stack_for(const StackTotal& t) {
  auto it = stack_index_.find(t.id);
  if (it != stack_index_.end()) return it->second;
  StackEntry e;
  e.kind = t.kind;
  e.series = add_series("stack " + t.id, Category::kStack, t.kind, SeriesKind::kCount);
  std::string kind = to_string(t.kind);
  e.process = series_for(process_index_, "process " + kind + ":" + t.process, Category::kProcess, t.kind);
  for (size_t i = 0; i < t.frames.size(); ++i) {
    const std::string& module = i < t.modules.size() ? t.modules[i] : std::string();
    uint32_t f = series_for(function_index_, "function " + kind + ":" + module + "!" + t.frames[i],
                            Category::kFunction, t.kind);
    // Inclusive weight counts a function once per stack, even when recursive.
    if (std::find(e.functions.begin(), e.functions.end(), f) == e.functions.end()) e.functions.push_back(f);
  }
  int k = kind_index(t.kind);
  e.slot = static_cast<uint32_t>(slot_stack_[k].size());
  auto id = static_cast<uint32_t>(stacks_.size());
  slot_stack_[k].push_back(id);
  stacks_.push_back(std::move(e));
  stack_index_.emplace(t.id, id);
  return id;
}

std::vector<Anomaly> IntervalMonitor::observe(Interval& interval, const std::map<std::string, double>& load,
                                              IntervalRecord* record_out) {
  std::vector<uint32_t> sample_to_stack;
  // Frames are only needed for stacks this monitor has not seen yet.
  IntervalRecord record = summarize_interval(interval, load, &sample_to_stack, [this](const std::string& id) {
    return stack_index_.count(id) != 0;
  });
  std::vector<std::string> labels;
  std::vector<Anomaly> anomalies = observe(record, &labels);
  if (record_out) *record_out = std::move(record);
  for (size_t i = 0; i < interval.stacks.size(); ++i) add_label(interval.stacks[i].label, labels[sample_to_stack[i]]);
  return anomalies;
}

std::vector<Anomaly> IntervalMonitor::observe(const IntervalRecord& record, std::vector<std::string>* stack_labels) {
  ++intervals_;
  std::fill(values_.begin(), values_.end(), 0.0);
  double samples[2] = {0, 0};
  std::vector<uint32_t> record_stack(record.stacks.size());
  for (size_t i = 0; i < record.stacks.size(); ++i) {
    const StackTotal& t = record.stacks[i];
    uint32_t id = stack_for(t);
    record_stack[i] = id;
    StackEntry& e = stacks_[id];
    if (t.weight > 0) {
      e.last_seen = intervals_;
      e.last_weight = t.weight;
    }
    double w = static_cast<double>(t.weight);
    values_[e.series] += w;
    values_[e.process] += w;
    for (uint32_t f : e.functions) values_[f] += w;
    samples[kind_index(t.kind)] += static_cast<double>(t.samples);
  }

  // Effect gates per kind.
  double on_total = 0;
  for (size_t i = 0; i < record.stacks.size(); ++i)
    if (record.stacks[i].kind == StackKind::kOnCpu) on_total += static_cast<double>(record.stacks[i].weight);
  double interval_us = static_cast<double>(record.end_unix_ns - record.start_unix_ns) / 1000.0;
  double min_effect[2] = {std::max(kMinSamples, kMinShareOfSamples * on_total),
                          std::max(1.0, kMinBlockedShareOfInterval * interval_us)};

  // Univariate series, in creation order (deterministic for replay).
  std::vector<Flag> flags;
  for (uint32_t s = 0; s < series_.size(); ++s) {
    Series& series = series_[s];
    if (series.category == Category::kLoad) continue;
    UnivariateResult r = series.detector.observe(values_[s]);
    if (!r.anomaly) continue;
    if (std::abs(values_[s] - r.expected) < min_effect[kind_index(series.kind)]) continue;
    flags.push_back(Flag{s, values_[s], r});
  }
  for (const auto& [name, value] : record.load) {
    uint32_t s = series_for(load_index_, "load " + name, Category::kLoad, StackKind::kOnCpu);
    UnivariateResult r = series_[s].detector.observe(value);
    if (r.anomaly) flags.push_back(Flag{s, value, r});
  }

  // Stack mix, per kind.
  MixResult mix[2];
  for (int k = 0; k < 2; ++k) {
    Eigen::ArrayXd& w = mix_weights_[k];
    w.setZero(static_cast<Eigen::Index>(slot_stack_[k].size()));
    for (size_t i = 0; i < record.stacks.size(); ++i) {
      const StackEntry& e = stacks_[record_stack[i]];
      if (kind_index(e.kind) == k) w[e.slot] += static_cast<double>(record.stacks[i].weight);
    }
    mix[k] = mix_[k]->observe(w, samples[k]);
  }

  std::vector<Anomaly> out;
  std::vector<std::string> labels(record.stacks.size());
  const std::string when = "interval " + std::to_string(record.index) + " (" + format_unix_ns(record.start_unix_ns) + "): ";
  auto start_anomaly = [&](std::string kind, double score, double threshold) {
    Anomaly a;
    a.interval_index = record.index;
    a.start_unix_ns = record.start_unix_ns;
    a.end_unix_ns = record.end_unix_ns;
    a.kind = std::move(kind);
    a.score = score;
    a.threshold = threshold;
    return a;
  };

  // Univariate groups: load first, then stacks, functions, processes.
  static const char* const kCategoryName[] = {"stack", "function", "process", "load"};
  std::vector<uint8_t> stack_flagged(series_.size(), 0);
  for (Category category : {Category::kLoad, Category::kStack, Category::kFunction, Category::kProcess}) {
    std::vector<const Flag*> group;
    for (const Flag& f : flags)
      if (series_[f.series].category == category) group.push_back(&f);
    if (group.empty()) continue;
    // Largest score first; on a tie the later-created series, which for the
    // functions of one stack is the inner one: the most specific name.
    std::sort(group.begin(), group.end(), [](const Flag* a, const Flag* b) {
      double ra = a->result.ratio(), rb = b->result.ratio();
      return ra != rb ? ra > rb : a->series > b->series;
    });
    const Flag& head = *group.front();
    Anomaly a = start_anomaly(std::string(kCategoryName[static_cast<int>(category)]) + "_" + to_string(head.result.kind),
                              head.result.score, head.result.threshold);
    for (const Flag* f : group) {
      if (static_cast<int>(a.top.size()) == config_.top_k) break;
      a.top.push_back(Contributor{series_[f->series].name, f->value - f->result.expected});
    }
    a.description = when + a.kind + ": " + series_[head.series].name + " = " + format_number(head.value) +
                    ", expected " + format_number(head.result.expected) + " (score " +
                    format_number(head.result.score) + " > " + format_number(head.result.threshold) + ")";
    if (group.size() > 1) a.description += " and " + std::to_string(group.size() - 1) + " more";
    if (category == Category::kStack)
      for (const Flag* f : group) stack_flagged[f->series] = 1;
    out.push_back(std::move(a));
  }
  for (size_t i = 0; i < record.stacks.size(); ++i) {
    for (const Anomaly& a : out)
      if (a.kind.rfind("stack_", 0) == 0 && stack_flagged[stacks_[record_stack[i]].series]) labels[i] = anomaly_label(a);
  }

  // Mix groups.
  for (int k = 0; k < 2; ++k) {
    const MixResult& m = mix[k];
    if (!m.anomaly || m.top.empty()) continue;
    const MixContribution& head = m.top.front();
    Anomaly a = start_anomaly(head.first_seen ? "new_stack" : "stack_mix", m.distance, m.threshold);
    for (const MixContribution& c : m.top)
      a.top.push_back(Contributor{series_[stacks_[slot_stack_[k][c.slot]].series].name, c.share});
    a.description = when + a.kind + ": " + (k == 0 ? "on-CPU" : "off-CPU") + " stack mix changed (distance " +
                    format_number(m.distance) + " > " + format_number(m.threshold) + "), mostly " +
                    a.top.front().series + ": " + format_percent(head.now) + " of the interval (usually " +
                    format_percent(head.baseline) + "), " + format_percent(head.share) + " of the change";
    std::string label = anomaly_label(a);
    for (const MixContribution& c : m.top) {
      if (c.share < kMinLabelShare) continue;
      uint32_t stack = slot_stack_[k][c.slot];
      for (size_t i = 0; i < record.stacks.size(); ++i) {
        if (record_stack[i] != stack) continue;
        if (labels[i].empty())
          labels[i] = label;
        else
          labels[i] += "; " + label;
      }
    }
    out.push_back(std::move(a));
  }
  if (stack_labels) *stack_labels = std::move(labels);
  if (intervals_ % kForgetEvery == 0 || over_cap()) forget_stacks();
  return out;
}

bool IntervalMonitor::over_cap() const {
  return stacks_.size() > kMaxStacks || function_index_.size() > kMaxFunctions ||
         process_index_.size() > kMaxProcesses;
}

void IntervalMonitor::forget_stacks() {
  const uint64_t cutoff = intervals_ > kStaleIntervals ? intervals_ - kStaleIntervals : 0;
  std::vector<uint8_t> keep_stack(stacks_.size(), 0);
  size_t kept = 0;
  for (size_t i = 0; i < stacks_.size(); ++i) {
    keep_stack[i] = stacks_[i].last_seen >= cutoff;
    kept += keep_stack[i];
  }
  if (over_cap()) {
    // Most recently seen first, then heaviest, then oldest (deterministic,
    // so a replay forgets the same stacks); kept while every count fits
    // under 7/8 of its cap, the rest forgotten.
    std::vector<uint32_t> order;
    order.reserve(kept);
    for (size_t i = 0; i < stacks_.size(); ++i)
      if (keep_stack[i]) order.push_back(static_cast<uint32_t>(i));
    std::sort(order.begin(), order.end(), [this](uint32_t a, uint32_t b) {
      const StackEntry& x = stacks_[a];
      const StackEntry& y = stacks_[b];
      if (x.last_seen != y.last_seen) return x.last_seen > y.last_seen;
      if (x.last_weight != y.last_weight) return x.last_weight > y.last_weight;
      return a < b;
    });
    std::vector<uint8_t> used(series_.size(), 0);
    size_t stacks = 0, functions = 0, processes = 0;
    std::fill(keep_stack.begin(), keep_stack.end(), 0);
    for (uint32_t i : order) {
      const StackEntry& e = stacks_[i];
      size_t new_functions = 0;
      for (uint32_t f : e.functions) new_functions += !used[f];
      size_t new_process = !used[e.process];
      if (8 * (stacks + 1) > 7 * kMaxStacks || 8 * (functions + new_functions) > 7 * kMaxFunctions ||
          8 * (processes + new_process) > 7 * kMaxProcesses)
        break;
      keep_stack[i] = 1;
      ++stacks;
      functions += new_functions;
      processes += new_process;
      used[e.process] = 1;
      for (uint32_t f : e.functions) used[f] = 1;
    }
  } else if (kept == stacks_.size()) {
    return;
  }
  drop_stacks(keep_stack);
}

void IntervalMonitor::drop_stacks(const std::vector<uint8_t>& keep_stack) {
  // Series still used by a kept stack (and every load series) stay.
  std::vector<uint8_t> keep_series(series_.size(), 0);
  for (size_t i = 0; i < stacks_.size(); ++i) {
    const StackEntry& e = stacks_[i];
    if (!keep_stack[i]) continue;
    keep_series[e.series] = keep_series[e.process] = 1;
    for (uint32_t f : e.functions) keep_series[f] = 1;
  }
  for (size_t s = 0; s < series_.size(); ++s)
    if (series_[s].category == Category::kLoad) keep_series[s] = 1;

  // Renumber series and stacks in their old order (replay stays identical).
  // In place: the series are the monitor's largest state.
  std::vector<int64_t> series_map(series_.size(), -1);
  size_t kept = 0;
  for (size_t s = 0; s < series_.size(); ++s) {
    if (!keep_series[s]) continue;
    series_map[s] = static_cast<int64_t>(kept);
    if (kept != s) series_[kept] = std::move(series_[s]);
    ++kept;
  }
  series_.resize(kept);
  values_.assign(series_.size(), 0.0);
  for (auto* index : {&function_index_, &process_index_, &load_index_}) {
    for (auto it = index->begin(); it != index->end();) {
      if (series_map[it->second] < 0) {
        it = index->erase(it);
      } else {
        it->second = static_cast<uint32_t>(series_map[it->second]);
        ++it;
      }
    }
  }
  std::vector<int64_t> stack_map(stacks_.size(), -1);
  std::vector<StackEntry> stacks;
  stacks.reserve(stacks_.size());
  std::vector<int64_t> slot_map[2];
  std::vector<uint32_t> slot_stack[2];
  for (int k = 0; k < 2; ++k) slot_map[k].assign(slot_stack_[k].size(), -1);
  for (size_t i = 0; i < stacks_.size(); ++i) {
    if (!keep_stack[i]) continue;
    StackEntry e = std::move(stacks_[i]);
    e.series = static_cast<uint32_t>(series_map[e.series]);
    e.process = static_cast<uint32_t>(series_map[e.process]);
    for (uint32_t& f : e.functions) f = static_cast<uint32_t>(series_map[f]);
    stack_map[i] = static_cast<int64_t>(stacks.size());
    stacks.push_back(std::move(e));
  }
  // Mix slots: keep their relative order.
  for (int k = 0; k < 2; ++k) {
    for (size_t slot = 0; slot < slot_stack_[k].size(); ++slot) {
      int64_t stack = stack_map[slot_stack_[k][slot]];
      if (stack < 0) continue;
      slot_map[k][slot] = static_cast<int64_t>(slot_stack[k].size());
      stacks[static_cast<size_t>(stack)].slot = static_cast<uint32_t>(slot_stack[k].size());
      slot_stack[k].push_back(static_cast<uint32_t>(stack));
    }
    mix_[k]->remap_slots(slot_map[k], static_cast<Eigen::Index>(slot_stack[k].size()));
    slot_stack_[k] = std::move(slot_stack[k]);
  }
  for (auto it = stack_index_.begin(); it != stack_index_.end();) {
    if (stack_map[it->second] < 0) {
      it = stack_index_.erase(it);
    } else {
      it->second = static_cast<uint32_t>(stack_map[it->second]);
      ++it;
    }
  }
  stacks_ = std::move(stacks);
}

}  // namespace stackwatch::localize
