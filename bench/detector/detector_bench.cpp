// Detector throughput: univariate points per second (one core), stack-mix
// intervals per second at 1,000 and 10,000 distinct stacks, and the
// IntervalMonitor's time per interval with thousands of stacks (the cost
// `record` pays each interval). Prints figures; not part of ctest.
//
//   bench_detector [--quick]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "localize/localize.h"

using namespace stackwatch;
using namespace stackwatch::localize;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Many series, one point each in turn, as the monitor does (and as a column
// store would): the detector state does not stay in registers.
static void bench_univariate(size_t points) {
  const size_t kSeries = 1000;
  std::mt19937_64 rng(1);
  std::normal_distribution<double> n(0, 1);
  std::vector<double> data(1 << 16);
  for (double& v : data) v = 100 + 5 * n(rng);
  std::vector<UnivariateDetector> detectors(kSeries);
  for (auto& d : detectors)
    for (int i = 0; i < UnivariateDetector::kWarmup; ++i) d.observe(data[i]);
  size_t flags = 0;
  auto t0 = Clock::now();
  for (size_t i = 0; i < points; ++i) flags += detectors[i % kSeries].observe(data[i & 0xffff]).anomaly;
  double s = seconds_since(t0);
  std::printf("univariate: %zu points over %zu series in %.3f s = %.2f M points/s (%zu flags)\n", points, kSeries, s,
              points / s / 1e6, flags);
}

static void bench_mix(int stacks, int intervals) {
  std::mt19937_64 rng(2);
  std::vector<double> mix(stacks);
  for (int i = 0; i < stacks; ++i) mix[i] = 1.0 / (i + 1);
  std::discrete_distribution<int> pick(mix.begin(), mix.end());
  // Pre-drawn interval vectors (5 s at 49 Hz on 8 CPUs: ~2,000 samples).
  const int kVectors = 64;
  std::vector<Eigen::ArrayXd> vectors(kVectors, Eigen::ArrayXd::Zero(stacks));
  for (auto& v : vectors)
    for (int i = 0; i < 2000; ++i) v[pick(rng)] += 1;
  StackMixDetector d;
  size_t flags = 0;
  auto t0 = Clock::now();
  for (int i = 0; i < intervals; ++i) flags += d.observe(vectors[i % kVectors], 2000).anomaly;
  double s = seconds_since(t0);
  std::printf("stack mix: %d stacks: %d intervals in %.3f s = %.0f intervals/s (%zu flags)\n", stacks, intervals, s,
              intervals / s, flags);
}

static void bench_monitor(int stacks, int intervals) {
  std::mt19937_64 rng(3);
  std::poisson_distribution<int> count(3);
  // Each stack: 20 frames from a pool of 2,000 functions.
  std::vector<StackSample> templates(stacks);
  for (int s = 0; s < stacks; ++s) {
    StackSample& t = templates[s];
    t.tgid = t.tid = 100 + s % 10;
    t.process_name = "proc" + std::to_string(s % 10);
    t.frames.resize(20);
    for (int f = 0; f < 20; ++f) {
      t.frames[f].function = "fn" + std::to_string((s * 7 + f * 131) % 2000);
      t.frames[f].module = "/usr/lib/libx.so";
    }
    t.frames[0].function = "leaf" + std::to_string(s);  // distinct stacks
  }
  IntervalMonitor monitor;
  double total = 0, worst = 0, first = 0;
  size_t anomalies = 0;
  for (int i = 0; i < intervals; ++i) {
    Interval in;
    in.index = i;
    in.start_unix_ns = int64_t{i} * 1'000'000'000;
    in.end_unix_ns = in.start_unix_ns + 1'000'000'000;
    in.stacks = templates;
    for (auto& s : in.stacks) s.count = 1 + count(rng);
    auto t0 = Clock::now();
    anomalies += monitor.observe(in, {{"cpu_util", 0.5}}).size();
    double s = seconds_since(t0);
    if (i == 0) {
      first = s;  // creates every series: paid once per new stack
      continue;
    }
    total += s;
    worst = std::max(worst, s);
  }
  std::printf(
      "interval monitor: %d stacks x 20 frames, %zu series: %.2f ms per interval (worst %.2f ms; first interval "
      "%.2f ms; %zu anomalies)\n",
      stacks, monitor.series_count(), total / (intervals - 1) * 1e3, worst * 1e3, first * 1e3, anomalies);
}

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  bench_univariate(quick ? 5'000'000 : 50'000'000);
  bench_mix(1000, quick ? 20'000 : 200'000);
  bench_mix(10000, quick ? 2'000 : 20'000);
  bench_monitor(1000, quick ? 20 : 60);
  bench_monitor(10000, quick ? 10 : 30);
  return 0;
}
