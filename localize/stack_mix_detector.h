// StackMixDetector: has the mix of stacks in this interval changed from the
// usual mix, and which stacks account for the change?
//
// Each interval is a vector of per-stack weights indexed by slot (the caller
// gives each stack identity a stable slot). The detector compares the
// interval's shares p with a baseline mix b (an EWMA of past shares) by a
// Hellinger-type divergence whose per-stack terms are the contributions:
//     c_i = 1/2 * max(0, |sqrt(p_i) - sqrt(b_i)| - 2 tau)^2,  D = sum c_i,
// where tau = 1 / (2 sqrt(N)) is the sampling noise of sqrt(p_i) with N
// samples in the interval. Subtracting the noise keeps D near zero for a
// stable mix whatever the number of stacks or samples, so thousands of rare
// stacks that come and go do not drown one that really moved. sqrt(D) is
// then scored by a one-sided UnivariateDetector (SPOT threshold).
//
// Work per interval is a few vectorized passes (Eigen) over the slots; a
// divergence rather than a reconstruction error is used because it needs no
// training and its per-stack terms explain the score exactly.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "localize/univariate_detector.h"

namespace stackwatch::localize {

struct MixContribution {
  uint32_t slot = 0;
  double share = 0;       // fraction of the divergence due to this stack
  double now = 0;         // its share of the interval
  double baseline = 0;    // its share of the baseline mix
  bool first_seen = false;  // it never had weight before this interval
};

struct MixResult {
  bool warming_up = true;  // also true for an interval with no samples
  bool anomaly = false;
  double distance = 0;   // sqrt(D), the score
  double threshold = 0;  // distance above which the interval is anomalous
  std::vector<MixContribution> top;  // filled for anomalies, largest first
};

class StackMixDetector {
 public:
  // Below this Hellinger distance a change moves too little of the mix to be
  // worth a report, however significant: about 0.25% of the mass moved.
  static constexpr double kMinDistance = 0.05;

  explicit StackMixDetector(double risk = 1e-4, int top_k = 5);

  // weights[slot]: this interval's weight per stack (missing slots are 0);
  // samples: how many samples (events) the weights come from, for the noise.
  MixResult observe(const Eigen::Ref<const Eigen::ArrayXd>& weights, double samples);

  // Renumbers the slots: new_slot[old] is the slot's new number, or -1 to
  // drop it (a stack the caller forgot). New numbers must keep the order.
  void remap_slots(const std::vector<int64_t>& new_slot, Eigen::Index slots);

  double baseline_share(uint32_t slot) const {
    return slot < baseline_.size() ? baseline_[slot] : 0.0;
  }

 private:
  void grow(Eigen::Index slots);
  std::vector<MixContribution> top_contributors(double divergence) const;

  int top_k_;
  uint64_t intervals_ = 0;  // intervals with samples seen
  int anomalous_run_ = 0;   // anomalous intervals in a row
  Eigen::ArrayXd baseline_;
  Eigen::ArrayXd sqrt_baseline_;
  Eigen::ArrayXd shares_;        // this interval's p, reused
  Eigen::ArrayXd contribution_;  // this interval's c_i, reused
  std::vector<uint8_t> seen_;    // slot ever had weight
  UnivariateDetector score_;
};

}  // namespace stackwatch::localize
