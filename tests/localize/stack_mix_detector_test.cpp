// StackMixDetector on synthetic interval vectors: multinomial samples from a
// fixed mix of many stacks; a new stack taking 30% is flagged and named.
#include "localize/stack_mix_detector.h"

#include <gtest/gtest.h>

#include <random>

namespace stackwatch::localize {
namespace {

// A long-tailed mix like real profiles: stack i has weight 1/(i+1).
std::vector<double> zipf_mix(int stacks) {
  std::vector<double> p(stacks);
  double total = 0;
  for (int i = 0; i < stacks; ++i) total += p[i] = 1.0 / (i + 1);
  for (double& v : p) v /= total;
  return p;
}

Eigen::ArrayXd sample(std::mt19937_64& rng, const std::vector<double>& mix, int samples) {
  std::discrete_distribution<int> pick(mix.begin(), mix.end());
  Eigen::ArrayXd w = Eigen::ArrayXd::Zero(static_cast<Eigen::Index>(mix.size()));
  for (int i = 0; i < samples; ++i) w[pick(rng)] += 1;
  return w;
}

TEST(StackMixDetector, NewStackTakingThirtyPercentIsFlaggedAndNamed) {
  std::mt19937_64 rng(42);
  const int kStacks = 300;
  std::vector<double> mix = zipf_mix(kStacks);
  StackMixDetector d;
  size_t false_flags = 0;
  for (int t = 0; t < 200; ++t) {
    MixResult r = d.observe(sample(rng, mix, 2000), 2000);
    false_flags += r.anomaly;
  }
  EXPECT_LE(false_flags, 2u);  // 1% of 200 intervals

  // Slot kStacks is new: 30% of the interval's samples.
  std::vector<double> changed = mix;
  for (double& v : changed) v *= 0.7;
  changed.push_back(0.3);
  MixResult r = d.observe(sample(rng, changed, 2000), 2000);
  ASSERT_TRUE(r.anomaly);
  EXPECT_GT(r.distance, r.threshold);
  ASSERT_FALSE(r.top.empty());
  EXPECT_EQ(r.top[0].slot, static_cast<uint32_t>(kStacks));
  EXPECT_TRUE(r.top[0].first_seen);
  EXPECT_NEAR(r.top[0].now, 0.3, 0.04);
  EXPECT_EQ(r.top[0].baseline, 0.0);
  EXPECT_GT(r.top[0].share, 0.8);  // "mostly this stack"
  for (size_t i = 1; i < r.top.size(); ++i) EXPECT_LE(r.top[i].share, r.top[i - 1].share);
}

TEST(StackMixDetector, ExistingStackGrowingIsNamedButNotNew) {
  std::mt19937_64 rng(7);
  std::vector<double> mix = zipf_mix(100);
  StackMixDetector d;
  for (int t = 0; t < 100; ++t) d.observe(sample(rng, mix, 5000), 5000);
  // Stack 40 (normally ~0.5%) jumps to 25%.
  std::vector<double> changed = mix;
  for (double& v : changed) v *= 0.75;
  changed[40] += 0.25;
  MixResult r = d.observe(sample(rng, changed, 5000), 5000);
  ASSERT_TRUE(r.anomaly);
  ASSERT_FALSE(r.top.empty());
  EXPECT_EQ(r.top[0].slot, 40u);
  EXPECT_FALSE(r.top[0].first_seen);
}

TEST(StackMixDetector, FewerSamplesDoNotLookLikeAMixChange) {
  // The same mix at 10x fewer samples is noisier, not different: the noise
  // correction keeps it quiet.
  std::mt19937_64 rng(9);
  std::vector<double> mix = zipf_mix(500);
  StackMixDetector d;
  for (int t = 0; t < 100; ++t) d.observe(sample(rng, mix, 5000), 5000);
  size_t flags = 0;
  for (int t = 0; t < 50; ++t) flags += d.observe(sample(rng, mix, 500), 500).anomaly;
  EXPECT_LE(flags, 1u);
}

TEST(StackMixDetector, EmptyIntervalIsSkipped) {
  StackMixDetector d;
  MixResult r = d.observe(Eigen::ArrayXd::Zero(10), 0);
  EXPECT_FALSE(r.anomaly);
  EXPECT_TRUE(r.warming_up);
}

}  // namespace
}  // namespace stackwatch::localize
