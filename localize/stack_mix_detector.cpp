// Noise-corrected Hellinger divergence of the stack mix, with per-stack
// contributions (see stack_mix_detector.h).
#include "localize/stack_mix_detector.h"

#include <algorithm>
#include <cmath>

namespace stackwatch::localize {

namespace {

// Gain of the baseline mix: a memory of about 10 intervals, so a lasting
// change of mix is absorbed after being reported for a few intervals.
constexpr double kBaselineGain = 0.1;
// Differences within 2 sd of the sampling noise count as noise.
constexpr double kNoiseSds = 2.0;
// Anomalous intervals in a row after which the new mix becomes the baseline,
// as for a level shift in UnivariateDetector. The distance detector itself
// does not re-learn shifts: after this, the distance falls back to noise.
constexpr int kConfirm = UnivariateDetector::kConfirm;

}  // namespace

StackMixDetector::StackMixDetector(double risk, int top_k)
    : top_k_(top_k), score_(UnivariateConfig{risk, SeriesKind::kReal, Direction::kUp, false}) {}

void StackMixDetector::grow(Eigen::Index slots) {
  Eigen::Index old = baseline_.size();
  if (slots <= old) return;
  baseline_.conservativeResize(slots);
  sqrt_baseline_.conservativeResize(slots);
  baseline_.tail(slots - old).setZero();
  sqrt_baseline_.tail(slots - old).setZero();
  seen_.resize(slots, 0);
}

MixResult StackMixDetector::observe(const Eigen::Ref<const Eigen::ArrayXd>& weights, double samples) {
  MixResult r;
  double total = weights.sum();
  if (!(total > 0) || !(samples > 0)) return r;  // nothing ran: no mix to compare
  grow(weights.size());
  const Eigen::Index n = baseline_.size();
  shares_.setZero(n);
  shares_.head(weights.size()) = weights / total;

  if (intervals_++ == 0) {
    baseline_ = shares_;
    sqrt_baseline_ = baseline_.sqrt();
    for (Eigen::Index i = 0; i < weights.size(); ++i) seen_[i] |= weights[i] > 0;
    return r;
  }

  const double tau = kNoiseSds / (2.0 * std::sqrt(samples));
  contribution_ = ((shares_.sqrt() - sqrt_baseline_).abs() - tau).max(0.0);
  contribution_ = 0.5 * contribution_.square();
  double divergence = contribution_.sum();
  double distance = std::sqrt(divergence);

  UnivariateResult s = score_.observe(distance);
  r.warming_up = s.warming_up;
  r.distance = distance;
  r.threshold = std::max(s.upper, kMinDistance);
  // Only a jump of the distance itself counts (the point score): a mix that
  // drifts is absorbed by the baseline, not reported.
  r.anomaly = s.anomaly && distance > s.upper && distance >= kMinDistance;
  if (r.anomaly) r.top = top_contributors(divergence);

  if (!r.anomaly) {
    anomalous_run_ = 0;
    // The early baseline is a running mean (gain 1/k), then an EWMA.
    double gain = std::max(kBaselineGain, 1.0 / static_cast<double>(intervals_));
    baseline_ += gain * (shares_ - baseline_);
  } else if (++anomalous_run_ >= kConfirm) {
    // The new mix has lasted: it is the new normal.
    baseline_ = shares_;
    anomalous_run_ = 0;
  }
  // (A single anomalous interval leaves the baseline alone, so a short burst
  // neither pollutes it nor echoes as a "change back" afterwards.)
  sqrt_baseline_ = baseline_.sqrt();
  for (Eigen::Index i = 0; i < weights.size(); ++i) seen_[i] |= weights[i] > 0;
  return r;
}

void StackMixDetector::remap_slots(const std::vector<int64_t>& new_slot, Eigen::Index slots) {
  Eigen::ArrayXd baseline = Eigen::ArrayXd::Zero(slots);
  std::vector<uint8_t> seen(static_cast<size_t>(slots), 0);
  for (size_t old = 0; old < new_slot.size() && old < static_cast<size_t>(baseline_.size()); ++old) {
    if (new_slot[old] < 0) continue;
    baseline[new_slot[old]] = baseline_[static_cast<Eigen::Index>(old)];
    seen[static_cast<size_t>(new_slot[old])] = seen_[old];
  }
  // The dropped stacks had (almost) no share left; renormalize the rest.
  double total = baseline.sum();
  if (total > 0) baseline /= total;
  baseline_ = std::move(baseline);
  sqrt_baseline_ = baseline_.sqrt();
  seen_ = std::move(seen);
}

std::vector<MixContribution> StackMixDetector::top_contributors(double divergence) const {
  // Partial selection of the k largest terms: one pass, k small.
  std::vector<MixContribution> top;
  top.reserve(top_k_ + 1);
  for (Eigen::Index i = 0; i < contribution_.size(); ++i) {
    double c = contribution_[i];
    if (c <= 0) continue;
    if (static_cast<int>(top.size()) == top_k_ && c <= top.back().share) continue;
    MixContribution m;
    m.slot = static_cast<uint32_t>(i);
    m.share = c;
    auto pos = std::find_if(top.begin(), top.end(), [c](const MixContribution& t) { return c > t.share; });
    top.insert(pos, m);
    if (static_cast<int>(top.size()) > top_k_) top.pop_back();
  }
  for (MixContribution& m : top) {
    m.share /= divergence;
    m.now = shares_[m.slot];
    m.baseline = baseline_[m.slot];
    m.first_seen = !seen_[m.slot];
  }
  return top;
}

}  // namespace stackwatch::localize
