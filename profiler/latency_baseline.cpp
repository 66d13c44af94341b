// Baseline latency rounds (see latency_baseline.h).
#include "profiler/latency_baseline.h"

#include <algorithm>
#include <cmath>

#include "localize/baseline_candidates.h"
#include "recording/error.h"

namespace stackwatch::profiler {

namespace {

// Rounds remembered per function: enough to reach back past the lead-up.
constexpr size_t kRoundsKept = 3;
// Processes whose rounds are remembered: a system-wide recording rotates
// over the busiest few, and processes come and go.
constexpr size_t kMaxProcesses = 16;
// Busiest processes a round may pick from (in turn).
constexpr size_t kRotation = 3;
// A uprobe + uretprobe pair costs a few microseconds per call: above this
// call rate a function's probe costs several percent of a CPU, too much for
// a measurement nobody asked for yet.
constexpr double kMaxCallsPerSecond = 20000;
// A round shorter than this says nothing about a function without calls.
constexpr double kMinRoundSeconds = 0.5;

}  // namespace

LatencyBaseline::LatencyBaseline(Options options) : options_(options) {}

LatencyBaseline::~LatencyBaseline() { finish(); }

void LatencyBaseline::say(const std::string& line) const {
  if (options_.report) std::fprintf(options_.report, "  %s\n", line.c_str());
}

void LatencyBaseline::stop() {
  if (running_) detacher_.detach(std::move(running_->probes));
  running_.reset();
}

void LatencyBaseline::finish() {
  stop();
  detacher_.wait();
}

void LatencyBaseline::end_round(bool keep) {
  Round r = std::move(*running_);
  running_.reset();
  // Read while attached (calls in flight are not counted), detach in the
  // background: the record loop keeps its interval.
  r.results = r.probes->report();
  double seconds = r.probes->elapsed_seconds();
  detacher_.detach(std::move(r.probes));
  if (!keep) return;
  for (size_t i = 0; i < r.results.size() && i < r.keys.size() && i < r.targets.size(); ++i) {
    const localize::FunctionLatency& f = r.results[i];
    if ((f.calls == 0 && seconds >= kMinRoundSeconds) ||
        (seconds > 0 && static_cast<double>(f.calls) / seconds > kMaxCallsPerSecond))
      excluded_[r.tgid].insert(r.keys[i]);
    localize::BaselineLatency b;
    b.measured = true;
    b.interval = r.interval;
    b.seconds = seconds;
    b.calls = f.calls;
    b.p50_ns = f.p50_ns;
    b.p99_ns = f.p99_ns;
    b.max_ns = f.max_ns;
    b.sampled = true;
    b.rounds = 1;
    b.log2_histogram = f.log2_histogram;
    auto& list = measured_[{r.tgid, r.targets[i].binary_path, r.targets[i].file_offset}];
    list.push_back(b);
    if (list.size() > kRoundsKept) list.erase(list.begin());
  }
}

void LatencyBaseline::end_interval(uint64_t index, bool normal) {
  if (running_ && running_->interval <= index) end_round(normal);
}

bool LatencyBaseline::due(uint64_t index, size_t normal_intervals) const {
  if (running_ || normal_intervals < options_.first_after) return false;
  return !last_start_ || index >= *last_start_ + options_.every;
}

void LatencyBaseline::start(uint64_t index, const std::vector<StackSample>& normal_stacks, double seconds) {
  last_start_ = index;
  std::vector<uint32_t> busiest = localize::busiest_processes(normal_stacks, options_.sample_hz, kRotation);
  if (busiest.empty()) return;
  uint32_t tgid = busiest[rotation_++ % busiest.size()];
  auto candidates = localize::baseline_candidates(normal_stacks, seconds, tgid, options_.sample_hz,
                                                  options_.functions, excluded_[tgid]);
  if (candidates.empty()) return;
  ProbePlan plan = plan_probes(static_cast<int>(tgid), candidates, options_.functions);
  for (size_t i = 0; i < plan.skipped.size(); ++i) {
    // An unresolvable function stays so: do not retry it every round.
    const std::string& why = plan.skipped[i];
    for (const auto& c : candidates)
      if (why.rfind(c.function.name + ":", 0) == 0) excluded_[tgid].insert(c.function.key());
  }
  if (plan.targets.empty()) return;

  // Forget the processes probed longest ago.
  last_round_[tgid] = index + 1;
  while (last_round_.size() > kMaxProcesses) {
    auto oldest = last_round_.begin();
    for (auto it = last_round_.begin(); it != last_round_.end(); ++it)
      if (it->second < oldest->second) oldest = it;
    uint32_t gone = oldest->first;
    last_round_.erase(oldest);
    excluded_.erase(gone);
    for (auto it = measured_.begin(); it != measured_.end();)
      it = std::get<0>(it->first) == gone ? measured_.erase(it) : std::next(it);
  }

  Round r;
  r.interval = index + 1;
  r.tgid = tgid;
  for (size_t k : plan.suspect_index) r.keys.push_back(candidates[k].function.key());
  try {
    // No expiry: the round ends with its interval (end_interval).
    r.probes = std::make_unique<LatencyProbes>(plan.targets, LatencyProbeOptions{.pid = static_cast<int>(tgid), .seconds = 1e9});
  } catch (const Error& e) {
    say(std::string("baseline: cannot probe: ") + e.what());
    return;
  }
  r.targets = plan.targets;
  std::string names;
  for (const auto& t : plan.targets) names += (names.empty() ? "" : ", ") + t.function;
  say("baseline: probing " + names + " in " + candidates.front().process + " (" + std::to_string(tgid) +
      ") for one interval");
  running_ = std::move(r);
}

std::optional<localize::BaselineLatency> LatencyBaseline::find(uint32_t tgid, const std::string& binary,
                                                               uint64_t file_offset, uint64_t anomaly) const {
  auto it = measured_.find({tgid, binary, file_offset});
  if (it == measured_.end()) return std::nullopt;
  std::vector<const localize::BaselineLatency*> rounds;
  for (const auto& b : it->second)
    if (b.interval + kLeadUp <= anomaly) rounds.push_back(&b);
  if (rounds.empty()) return std::nullopt;
  if (rounds.size() == 1) return *rounds.front();
  localize::BaselineLatency pooled;
  pooled.measured = true;
  pooled.sampled = true;
  pooled.interval = rounds.back()->interval;
  for (const localize::BaselineLatency* b : rounds) {
    pooled.rounds += b->rounds;
    pooled.seconds += b->seconds;
    pooled.calls += b->calls;
    pooled.max_ns = std::max(pooled.max_ns, b->max_ns);
    if (pooled.log2_histogram.size() < b->log2_histogram.size()) pooled.log2_histogram.resize(b->log2_histogram.size());
    for (size_t i = 0; i < b->log2_histogram.size(); ++i) pooled.log2_histogram[i] += b->log2_histogram[i];
  }
  // Percentiles of the pooled log2 histogram: the middle of the bucket
  // holding the q-th call, never above the max (as a single round's are
  // the middle of its finer bucket).
  uint64_t total = 0;
  for (uint64_t n : pooled.log2_histogram) total += n;
  auto percentile = [&](double q) -> uint64_t {
    auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(total))));
    uint64_t seen = 0;
    for (size_t i = 0; i < pooled.log2_histogram.size(); ++i) {
      seen += pooled.log2_histogram[i];
      if (seen >= rank) {
        uint64_t lo = i == 0 ? 0 : uint64_t{1} << std::min<size_t>(i, 62);
        return std::min<uint64_t>(lo + lo / 2, pooled.max_ns);
      }
    }
    return pooled.max_ns;
  };
  if (total > 0) {
    pooled.p50_ns = percentile(0.50);
    pooled.p99_ns = percentile(0.99);
  }
  return pooled;
}

}  // namespace stackwatch::profiler
