// SpotThreshold: an alarm threshold for one stream of anomaly scores, set
// from the data by extreme value theory (SPOT, Siffer et al., KDD 2017).
//
// The excesses of the score over a fixed high level t are modelled by a
// generalized Pareto distribution (GPD); the alarm threshold is the GPD
// quantile at which a point has probability `risk` of being exceeded. The GPD
// is refitted by the method of moments from running sums, so an update costs
// O(1) and the state is a handful of doubles (no stored peaks).
//
// Scores are expected to be standardized (about |N(0,1)| when nothing is
// wrong). That lets the fit start from a prior: the tail of |N(0,1)| counted
// as kPriorPoints observations. Without it SPOT needs hundreds of points
// before its first threshold; with it the threshold is sound after the
// detector's short warm-up, and data with heavier tails than the prior raise
// it as their peaks arrive. The threshold never falls below the prior's, so a
// long quiet stretch cannot make the detector trigger-happy.
#pragma once

#include <cstdint>

namespace stackwatch::localize {

class SpotThreshold {
 public:
  // risk: probability that a normal point exceeds the threshold (SPOT's q).
  explicit SpotThreshold(double risk = 1e-4);

  // Current alarm threshold on the score.
  double threshold() const { return threshold_; }

  // Feeds one score. Returns true when it exceeds the threshold (an anomaly,
  // which, as in SPOT, is not added to the tail model); otherwise the score
  // updates the tail model, unless `learn` is false (the caller knows the
  // point belongs to an anomaly that is still going on).
  bool observe(double score, bool learn = true);

  // The threshold the prior alone gives for `risk`.
  static double prior_threshold(double risk);

 private:
  void refit();
  void decay_peaks();

  double risk_;
  double floor_;            // prior threshold, the lower bound
  double threshold_;
  double points_ = 0;       // decayed count of data points
  double peaks_ = 0;        // decayed count of data peaks (score > kLevel)
  double peak_sum_ = 0;     // decayed sum of excesses
  double peak_sum_sq_ = 0;  // decayed sum of squared excesses
  uint64_t clock_ = 0;      // points seen, for lazy decay of the peak sums
  uint64_t peak_clock_ = 0; // clock_ when the peak sums were last decayed
};

}  // namespace stackwatch::localize
