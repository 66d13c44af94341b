// Robust one-step prediction, three standardized scores, SPOT thresholds
// (see univariate_detector.h).
#include "localize/univariate_detector.h"

#include <algorithm>
#include <cmath>

namespace stackwatch::localize {

namespace {

// Gain of the slow level: a memory of about 20 points, so a drift of d per
// point leaves a lag of only 20*d, while a spike moves the level by at most
// kLevelGain * kLevelClip sigma.
constexpr double kLevelGain = 0.05;
constexpr double kLevelClip = 2.0;
// Gain of the long-window variances and of the AR(1) covariance: ~50 points.
constexpr double kScaleGain = 0.02;
// Squared errors are clipped at 3 sigma in the long variance, so one outlier
// cannot inflate the scale, yet a real variance increase still grows it by up
// to 16% a point.
constexpr double kScaleClip = 3.0;
// AR(2) fit: forgetting factor (a memory of about 100 points), the prior
// weight of the starting coefficients (about 10 points), a cap on the RLS
// matrix against wind-up on a constant series, and the stationarity margin
// (a1 + a2 and a2 - a1 below 0.98, |a2| below 0.98) that keeps the
// prediction anchored to the level.
constexpr double kArForget = 0.99;
constexpr double kArPrior = 0.1;
constexpr double kArMaxTrace = 10.0;
constexpr double kArStable = 0.98;
// Shift score: EWMA with gain 0.3 (about 3 points) of errors clipped at 3
// sigma, so one spike alone cannot raise it past ~2 sd. Its standard
// deviation under white noise is sqrt(g / (2 - g)).
constexpr double kShiftGain = 0.3;
constexpr double kShiftClip = 3.0;
const double kShiftSd = std::sqrt(kShiftGain / (2.0 - kShiftGain));
// Variance score: EWMA with gain 0.2 of squared standardized errors, clipped
// at 4 sigma so a single spike does not look like a variance change. Its
// log has a standard deviation of about sqrt(2 g / (2 - g)) under white noise.
constexpr double kVarGain = 0.2;
constexpr double kVarClipSq = 16.0;
const double kVarLogSd = std::sqrt(2.0 * kVarGain / (2.0 - kVarGain));
// Scores at or below SPOT's level (2.0) never matter; skip the log for them.
const double kVarRatioAtLevel = std::exp(2.0 * kVarLogSd);
// After a flag, the tails stop learning for this many points: the scores of
// an anomaly's tail end (the slow-decaying shift and variance scores, a
// baseline still settling) are not samples of normal behaviour.
constexpr int kHoldoff = 20;
// Points behind a long-window scale estimate (gain 0.02: (2 - g) / g).
constexpr double kScaleDof = 100.0;
// Errors beyond this many sigma count towards a level-shift run.
constexpr double kRunSigma = 2.0;

double clip(double v, double limit) { return std::clamp(v, -limit, limit); }

}  // namespace

const char* to_string(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::kSpike: return "spike";
    case ChangeKind::kDip: return "dip";
    case ChangeKind::kLevelShift: return "level_shift";
    case ChangeKind::kVarianceChange: return "variance";
    case ChangeKind::kNone: break;
  }
  return "none";
}

UnivariateDetector::UnivariateDetector(const UnivariateConfig& config)
    : config_(config),
      count_series_(config.series == SeriesKind::kCount),
      point_spot_(config.risk),
      shift_spot_(config.risk),
      var_spot_(config.risk) {
  double t = SpotThreshold::prior_threshold(config.risk);
  young_scale_ = (t * t + 1.0) / 4.0;
}

double UnivariateDetector::noise_floor() const {
  // Poisson: variance = mean; +1 so that zero-heavy series still have a scale.
  if (count_series_) return std::max(level_, 0.0) + 1.0;
  // Real values: a relative floor so a constant series has a finite scale
  // (any real change in it is then an anomaly) without flagging rounding.
  double rel = 1e-6 * std::max(std::abs(level_), 1e-6);
  return rel * rel;
}

void UnivariateDetector::start() {
  if (config_.series == SeriesKind::kAuto) {
    count_series_ = std::all_of(warm_.begin(), warm_.end(),
                                [](double v) { return v >= 0 && v == std::floor(v); });
  }
  std::array<double, kWarmup> sorted = warm_;
  std::nth_element(sorted.begin(), sorted.begin() + kWarmup / 2, sorted.end());
  double median = sorted[kWarmup / 2];
  std::array<double, kWarmup> abs_dev;
  double mean_abs = 0;
  for (int i = 0; i < kWarmup; ++i) {
    abs_dev[i] = std::abs(warm_[i] - median);
    mean_abs += abs_dev[i] / kWarmup;
  }
  std::nth_element(abs_dev.begin(), abs_dev.begin() + kWarmup / 2, abs_dev.end());
  // 1.4826 * MAD and 1.2533 * mean absolute deviation estimate sigma for
  // normal data; the mean deviation covers series that are mostly constant.
  double sigma = 1.4826 * abs_dev[kWarmup / 2];
  if (sigma == 0) sigma = 1.2533 * mean_abs;
  level_ = median;
  var_dev_ = std::max(sigma * sigma, noise_floor());
  double lag = 0, zero = 0;
  for (int i = 0; i < kWarmup; ++i) {
    double d = clip(warm_[i] - median, kScaleClip * std::sqrt(var_dev_));
    zero += d * d;
    if (i > 0) lag += d * clip(warm_[i - 1] - median, kScaleClip * std::sqrt(var_dev_));
  }
  double phi = zero > 0 ? std::clamp(lag / zero, 0.0, kArStable) : 0.0;
  ar_ << phi, 0.0;
  ar_p_ = Eigen::Matrix2d::Identity() * kArPrior;
  var_err_ = var_dev_ * (1.0 - phi * phi);
  prev_dev_ = clip(warm_[kWarmup - 1] - median, kScaleClip * std::sqrt(var_dev_));
  prev_dev2_ = clip(warm_[kWarmup - 2] - median, kScaleClip * std::sqrt(var_dev_));
  for (int i = 0; i < kConfirm; ++i) recent_[i] = warm_[kWarmup - kConfirm + i];
}

void UnivariateDetector::relearn() {
  double mean = 0;
  for (double v : recent_) mean += v / kConfirm;
  // The scale is kept: a level shift moves the level, not the noise, and
  // four points are too few to estimate a new scale.
  level_ = mean;
  prev_dev_ = clip(recent_[(recent_pos_ + kConfirm - 1) % kConfirm] - mean, kScaleClip * std::sqrt(var_dev_));
  prev_dev2_ = clip(recent_[(recent_pos_ + kConfirm - 2) % kConfirm] - mean, kScaleClip * std::sqrt(var_dev_));
  shift_ = 0;
  var_ratio_ = 1;
  run_ = 0;
}

UnivariateResult UnivariateDetector::observe(double value) {
  UnivariateResult r;
  // A missing value (NaN, inf) is skipped: one bad reading must not poison
  // the state for good.
  if (!std::isfinite(value)) {
    r.warming_up = warming_up();
    r.expected = level_;
    return r;
  }
  if (warm_count_ < kWarmup) {
    warm_[warm_count_++] = value;
    if (warm_count_ == kWarmup) start();
    r.expected = value;
    return r;
  }
  r.warming_up = false;
  const bool up_only = config_.direction == Direction::kUp;
  const double floor = noise_floor();
  const double sd_dev = std::sqrt(std::max(var_dev_, floor));
  // Right after the warm-up the scale rests on few points, so standardized
  // errors are t-like rather than normal: widen the scale by the
  // Cornish-Fisher factor for the t quantile, 1 + (z^2 + 1) / (4 nu), fading
  // out as the points behind the scale reach the long window's ~100.
  const double nu = static_cast<double>(kWarmup + since_warmup_);
  const double young = nu < kScaleDof ? young_scale_ * (1.0 / nu - 1.0 / kScaleDof) : 0.0;
  const double sd_err = std::sqrt(std::max(var_err_, floor)) * (1.0 + young);
  if (since_warmup_ < kScaleDof) ++since_warmup_;
  const double predicted = level_ + ar_[0] * prev_dev_ + ar_[1] * prev_dev2_;
  const double err = value - predicted;
  const double z = err / sd_err;
  r.expected = predicted;
  r.upper = predicted + point_spot_.threshold() * sd_err;
  r.lower = up_only ? -INFINITY : predicted - point_spot_.threshold() * sd_err;

  // Scores.
  double point = up_only ? std::max(z, 0.0) : std::abs(z);
  shift_ += kShiftGain * (clip(z, kShiftClip) - shift_);
  double shift = (up_only ? std::max(shift_, 0.0) : std::abs(shift_)) / kShiftSd;
  var_ratio_ += kVarGain * (std::min(z * z, kVarClipSq) - var_ratio_);
  double var = var_ratio_ > kVarRatioAtLevel ? std::log(var_ratio_) / kVarLogSd : 0.0;

  // Level-shift run: large errors of one sign in a row.
  int sign = z > kRunSigma ? 1 : (z < -kRunSigma ? -1 : 0);
  if (sign != 0 && sign == run_sign_) {
    ++run_;
  } else {
    run_ = sign != 0 ? 1 : 0;
    run_sign_ = sign;
  }

  // The tails learn only from normal stretches: not during an anomaly, its
  // aftermath, or a run that may be the start of a level shift. Otherwise a
  // series with frequent anomalies would teach SPOT that they are normal.
  bool learn = holdoff_ == 0 && run_ < 2;
  bool point_hit = point_spot_.observe(point, learn);
  bool shift_hit = shift_spot_.observe(shift, learn);
  // A variance change shows in the point itself too: a point close to its
  // prediction is not flagged for the variance of its neighbours (nor for
  // the echo of a spike a few points back).
  bool var_hit = var_spot_.observe(var, learn) && std::abs(z) > kRunSigma;
  if (holdoff_ > 0) --holdoff_;
  if (point_hit || shift_hit || var_hit) holdoff_ = kHoldoff;
  recent_[recent_pos_] = value;
  recent_pos_ = (recent_pos_ + 1) % kConfirm;

  // Report the component that stands out most relative to its threshold.
  struct Part {
    bool hit;
    double score, threshold;
    ChangeKind kind;
  };
  Part parts[] = {
      {point_hit, point, point_spot_.threshold(), z >= 0 ? ChangeKind::kSpike : ChangeKind::kDip},
      {shift_hit, shift, shift_spot_.threshold(), ChangeKind::kLevelShift},
      {var_hit, var, var_spot_.threshold(), ChangeKind::kVarianceChange},
  };
  const Part* best = &parts[0];
  for (const Part& p : parts) {
    bool better = (p.hit && !best->hit) ||
                  (p.hit == best->hit && p.score * best->threshold > best->score * p.threshold);
    if (better) best = &p;
  }
  r.score = best->score;
  r.threshold = best->threshold;
  r.anomaly = best->hit;
  if (r.anomaly) r.kind = best->kind;

  bool confirmed = config_.confirm_shifts && run_ >= kConfirm && !(up_only && run_sign_ < 0);
  if (confirmed) {
    if (r.anomaly) r.kind = ChangeKind::kLevelShift;
    relearn();
    return r;
  }

  // Baseline updates, clipped so that outliers barely move them.
  double dev = value - level_;
  level_ += kLevelGain * clip(dev, kLevelClip * sd_dev);
  // During an anomaly the scale learns 4x slower: a burst of noise should
  // not blind the detector for long, while a lasting change is still
  // absorbed within about a hundred points.
  const double gain = holdoff_ > 0 ? kScaleGain / 4 : kScaleGain;
  double dev_c = clip(dev, kScaleClip * sd_dev);
  var_dev_ += gain * (dev_c * dev_c - var_dev_);
  double err_c = clip(err, kScaleClip * sd_err);
  var_err_ += gain * (err_c * err_c - var_err_);
  if (holdoff_ == 0 && std::abs(z) <= kScaleClip) update_ar(dev_c / sd_dev, sd_dev);
  // Robust filtering: a point far off its prediction enters the AR history
  // as the level itself, so a spike is not echoed as a dip, a level shift
  // keeps showing until confirmed, and flagged points cannot feed back into
  // the prediction (which, through predicted values, can ring).
  prev_dev2_ = prev_dev_;
  prev_dev_ = std::abs(z) > kScaleClip ? 0.0 : clip(value - level_, kScaleClip * sd_dev);
  return r;
}

void UnivariateDetector::update_ar(double target, double sd_dev) {
  // Recursive least squares with forgetting, on deviations in units of
  // sd_dev so that P is well conditioned whatever the series' scale.
  const Eigen::Vector2d u(prev_dev_ / sd_dev, prev_dev2_ / sd_dev);
  const Eigen::Vector2d pu = ar_p_ * u;
  const double denom = kArForget + u.dot(pu);
  const Eigen::Vector2d gain = pu / denom;
  const Eigen::Vector2d next = ar_ + gain * (target - ar_.dot(u));
  ar_p_ = (ar_p_ - gain * pu.transpose()) / kArForget;
  if (double trace = ar_p_.trace(); trace > kArMaxTrace) ar_p_ *= kArMaxTrace / trace;
  // Keep the AR(2) stationary (inside the triangle), else keep the old fit;
  // and a1 >= 0: a negative lag-1 term means a period under 4 points, which
  // real series do not have but noise can fake.
  if (next[0] >= 0 && next[0] + next[1] < kArStable && next[1] - next[0] < kArStable && std::abs(next[1]) < kArStable)
    ar_ = next;
}

}  // namespace stackwatch::localize
