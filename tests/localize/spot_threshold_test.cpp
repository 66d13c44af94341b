// SpotThreshold: the prior threshold matches the normal quantile, data with
// heavier tails raise it, anomalies do not teach it.
#include "localize/spot_threshold.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace stackwatch::localize {
namespace {

TEST(SpotThreshold, PriorMatchesTheNormalTail) {
  // Two-sided normal quantiles: P(|Z| > 3.89) = 1e-4, P(|Z| > 3.29) = 1e-3.
  EXPECT_NEAR(SpotThreshold::prior_threshold(1e-4), 3.89, 0.1);
  EXPECT_NEAR(SpotThreshold::prior_threshold(1e-3), 3.29, 0.1);
  EXPECT_GT(SpotThreshold::prior_threshold(1e-5), SpotThreshold::prior_threshold(1e-4));
}

TEST(SpotThreshold, NormalScoresKeepThePriorThreshold) {
  std::mt19937_64 rng(1);
  std::normal_distribution<double> n(0, 1);
  SpotThreshold spot(1e-4);
  size_t flags = 0;
  for (int i = 0; i < 100000; ++i) flags += spot.observe(std::abs(n(rng)));
  EXPECT_NEAR(spot.threshold(), 3.89, 0.35);
  EXPECT_LT(flags, 40u);  // expected ~10
}

TEST(SpotThreshold, ExponentialScoresRaiseItToTheirQuantile) {
  // Exp(1) scores: the true 1e-4 quantile is ln(1e4) = 9.2.
  std::mt19937_64 rng(2);
  std::exponential_distribution<double> e(1.0);
  SpotThreshold spot(1e-4);
  size_t flags = 0;
  for (int i = 0; i < 100000; ++i) flags += spot.observe(e(rng));
  EXPECT_NEAR(spot.threshold(), 9.2, 1.0);
  EXPECT_LT(flags, 200u);
}

TEST(SpotThreshold, ScoresAboveTheThresholdAreNotLearnt) {
  SpotThreshold spot(1e-4);
  double before = spot.threshold();
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(spot.observe(before + 10));
  EXPECT_DOUBLE_EQ(spot.threshold(), before);
}

TEST(SpotThreshold, NotLearningKeepsTheModel) {
  SpotThreshold spot(1e-4);
  double before = spot.threshold();
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(spot.observe(before - 0.1, false));
  EXPECT_DOUBLE_EQ(spot.threshold(), before);
  for (int i = 0; i < 1000; ++i) spot.observe(before - 0.1, true);
  EXPECT_GT(spot.threshold(), before);
}

}  // namespace
}  // namespace stackwatch::localize
