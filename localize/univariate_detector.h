// UnivariateDetector: streaming anomaly detection on one time series, O(1)
// work and memory per point, no training data and no tuning.
//
// After a warm-up of kWarmup points (robust start: median and MAD), each
// point is compared with a one-step prediction from a robust baseline: a
// slow, clipped EWMA level (absorbs slow drift, ignores spikes) plus an AR(2)
// term on the deviations, learned online by recursive least squares (so a
// wandering or cycling series is predicted from its last values, not from
// its mean). Outliers are filtered out of the AR history and the fit. The standardized prediction error feeds three
// scores, each with its own SPOT threshold (spot_threshold.h):
//   - point:    |error| / scale                          -> spike or dip
//   - shift:    fast EWMA of the clipped error           -> level shift
//   - variance: log(short-window / long-window variance) -> variance increase
// A level shift that persists for kConfirm points is "confirmed": the
// baseline re-learns at the new level instead of crawling towards it.
//
// Count series (stack samples) get a Poisson noise floor: their variance is
// taken as at least level + 1, so a stack that goes from 0 to 2 samples is
// not an event while one that goes from 0 to 200 is.
//
// Not modelled: seasonality (a daily cycle shows up as drift or as anomalies),
// and variance decreases (absorbed, not flagged).
#pragma once

#include <Eigen/Core>
#include <array>
#include <cstdint>

#include "localize/spot_threshold.h"

namespace stackwatch::localize {

enum class SeriesKind {
  kReal,   // any real values
  kCount,  // non-negative counts: Poisson noise floor
  kAuto,   // kCount if every warm-up value is a non-negative integer
};

enum class Direction {
  kBoth,  // flag increases and decreases
  kUp,    // flag increases only (e.g. a divergence score)
};

enum class ChangeKind { kNone, kSpike, kDip, kLevelShift, kVarianceChange };

// "spike", "dip", "level_shift", "variance", "none"
const char* to_string(ChangeKind kind);

struct UnivariateConfig {
  double risk = 1e-4;  // SPOT risk: chance a normal point is flagged, per score
  SeriesKind series = SeriesKind::kAuto;
  Direction direction = Direction::kBoth;
  // Re-learn the level after a confirmed shift. Off when the caller handles
  // lasting changes itself (StackMixDetector re-learns its baseline mix).
  bool confirm_shifts = true;
};

struct UnivariateResult {
  bool warming_up = true;
  bool anomaly = false;
  ChangeKind kind = ChangeKind::kNone;
  double score = 0;      // the score that stands out most (standardized units)
  double threshold = 0;  // that score's current threshold
  double expected = 0;   // the prediction the value was compared with
  double lower = 0;      // values outside [lower, upper] are spikes or dips
  double upper = 0;

  // score / threshold: above 1 means anomalous; comparable across series.
  double ratio() const { return threshold > 0 ? score / threshold : 0; }
};

class UnivariateDetector {
 public:
  // At most 20 points of warm-up (issue 6); 16 gives a usable MAD.
  static constexpr int kWarmup = 16;
  // Same-signed errors beyond 2 sigma in a row that confirm a level shift.
  static constexpr int kConfirm = 4;

  explicit UnivariateDetector(const UnivariateConfig& config = {});

  // Non-finite values are skipped (not anomalous, state unchanged).
  UnivariateResult observe(double value);

  bool warming_up() const { return warm_count_ < kWarmup; }
  double level() const { return level_; }
  // Current thresholds of the point, shift and variance scores.
  double point_threshold() const { return point_spot_.threshold(); }
  double shift_threshold() const { return shift_spot_.threshold(); }
  double variance_threshold() const { return var_spot_.threshold(); }

 private:
  void start();
  double noise_floor() const;
  void relearn();
  void update_ar(double target, double sd_dev);

  UnivariateConfig config_;
  bool count_series_ = false;
  int warm_count_ = 0;
  std::array<double, kWarmup> warm_{};
  std::array<double, kConfirm> recent_{};  // last values, for re-learning
  uint32_t recent_pos_ = 0;

  double level_ = 0;      // slow robust level
  double var_dev_ = 0;    // variance of value - level
  // AR(2) on the deviation from the level, fitted by recursive least
  // squares with forgetting (Eigen, 2x2): follows smooth swings (a cycle,
  // a wandering series) that a level alone cannot.
  Eigen::Vector2d ar_ = Eigen::Vector2d::Zero();  // coefficients of the last two deviations
  Eigen::Matrix2d ar_p_ = Eigen::Matrix2d::Identity();  // RLS inverse information
  double prev_dev_ = 0;   // last (filtered) value - level
  double prev_dev2_ = 0;  // the one before
  double var_err_ = 0;    // variance of the prediction error (long window)
  double var_ratio_ = 1;  // short-window error variance / var_err_
  double shift_ = 0;      // fast EWMA of the clipped standardized error
  int run_ = 0;           // same-signed large errors in a row
  int run_sign_ = 0;
  int since_warmup_ = 0;   // points since the warm-up, up to kScaleDof
  double young_scale_ = 0;  // (z^2 + 1) / 4 for the prior threshold z
  int holdoff_ = 0;       // points left during which the tails do not learn

  SpotThreshold point_spot_;
  SpotThreshold shift_spot_;
  SpotThreshold var_spot_;
};

}  // namespace stackwatch::localize
