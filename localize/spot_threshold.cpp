// SPOT threshold with a standard-normal tail prior and exponential forgetting
// (see spot_threshold.h).
#include "localize/spot_threshold.h"

#include <algorithm>
#include <cmath>

namespace stackwatch::localize {

namespace {

// The peaks-over-threshold level, in standardized units: |N(0,1)| exceeds 2
// with probability 4.55%, so the tail holds enough points for a stable fit
// while staying in the tail.
constexpr double kLevel = 2.0;
// Moments of |Z| - 2 given |Z| > 2 for Z ~ N(0,1): lambda = phi(2)/(1-Phi(2))
// (the inverse Mills ratio, 2.3732); mean = lambda - 2; var = 1 + 2*lambda - lambda^2.
constexpr double kPriorTailFraction = 0.04550;
constexpr double kPriorExcessMean = 0.37322;
constexpr double kPriorExcessVar = 0.11534;
// Weight of the prior, in points: strong enough that 20 points of warm-up
// cannot produce a wild fit, weak enough that a few hundred points of real
// data dominate it.
constexpr double kPriorPoints = 1000.0;
// Forgetting factor per point: the tail model has a memory of about 10,000
// points, so thresholds follow a series whose noise changes over hours.
constexpr double kForget = 1.0 - 1.0 / 10000.0;
// How often (in points, a power of two) a stream without peaks is refitted.
constexpr uint64_t kQuietRefit = 1024;

// GPD quantile above the level for tail fraction `tail` and risk `risk`,
// method-of-moments fit from excess mean and variance.
double gpd_threshold(double risk, double tail, double mean, double var) {
  double ratio = var > 0 ? mean * mean / var : 1.0;
  // Method of moments (Hosking & Wallis 1987): valid for shape < 1/2.
  double shape = std::clamp(0.5 * (1.0 - ratio), -0.5, 0.45);
  double scale = 0.5 * mean * (1.0 + ratio);
  double odds = tail / risk;  // > 1 when the tail is larger than the risk
  if (odds <= 1.0) return kLevel;
  if (std::abs(shape) < 1e-6) return kLevel + scale * std::log(odds);
  return kLevel + scale / shape * (std::pow(odds, shape) - 1.0);
}

}  // namespace

double SpotThreshold::prior_threshold(double risk) {
  return gpd_threshold(risk, kPriorTailFraction, kPriorExcessMean, kPriorExcessVar);
}

SpotThreshold::SpotThreshold(double risk)
    : risk_(risk), floor_(prior_threshold(risk)), threshold_(floor_) {}

bool SpotThreshold::observe(double score, bool learn) {
  ++clock_;
  points_ = points_ * kForget + 1.0;
  if (!(score > kLevel)) {  // also keeps NaN out of the model
    // Without peaks the tail fraction shrinks; refit now and then so the
    // threshold follows it down (never below the prior's).
    if ((clock_ & (kQuietRefit - 1)) == 0) refit();
    return false;
  }
  if (score > threshold_) return true;
  if (!learn) return false;
  decay_peaks();
  double excess = score - kLevel;
  peaks_ += 1.0;
  peak_sum_ += excess;
  peak_sum_sq_ += excess * excess;
  refit();
  return false;
}

void SpotThreshold::decay_peaks() {
  if (peak_clock_ == clock_) return;
  double decay = std::pow(kForget, static_cast<double>(clock_ - peak_clock_));
  peak_clock_ = clock_;
  peaks_ *= decay;
  peak_sum_ *= decay;
  peak_sum_sq_ *= decay;
}

void SpotThreshold::refit() {
  decay_peaks();
  double prior_peaks = kPriorPoints * kPriorTailFraction;
  double peaks = prior_peaks + peaks_;
  double mean = (prior_peaks * kPriorExcessMean + peak_sum_) / peaks;
  double second = (prior_peaks * (kPriorExcessVar + kPriorExcessMean * kPriorExcessMean) + peak_sum_sq_) / peaks;
  double var = std::max(second - mean * mean, 1e-12);
  double tail = peaks / (kPriorPoints + points_);
  threshold_ = std::max(floor_, gpd_threshold(risk_, tail, mean, var));
}

}  // namespace stackwatch::localize
