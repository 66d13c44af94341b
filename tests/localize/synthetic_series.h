// Synthetic series for the detector tests: Gaussian noise on a slowly
// drifting level, with anomalies of each kind injected at known points.
// Seeded, so every run sees the same data.
#pragma once

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace stackwatch::localize::testing {

struct Injected {
  std::string kind;  // "spike", "dip", "level_shift", "variance"
  size_t start = 0;
  size_t length = 0;  // points affected
};

struct SyntheticSeries {
  std::vector<double> values;
  std::vector<Injected> anomalies;
};

// n points: level 100 drifting by `drift_sd` noise sds over the whole series
// (slow drift, must not alarm), noise sd `sd`, AR(1) noise coefficient `ar`.
// Anomalies are injected every `gap` points after a quiet start of 200.
inline SyntheticSeries make_series(unsigned seed, size_t n, double sd, double drift_sd, double ar, size_t gap,
                                   bool inject = true) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, 1.0);
  SyntheticSeries s;
  s.values.resize(n);
  double e = 0;
  std::vector<double> shift(n, 0.0), scale(n, 1.0), extra(n, 0.0);
  if (inject) {
    static const char* const kKinds[] = {"spike", "dip", "level_shift", "variance", "level_shift_down"};
    size_t k = 0;
    for (size_t at = 200; at + gap <= n; at += gap, ++k) {
      std::string kind = kKinds[k % 5];
      Injected a{kind, at, 1};
      if (kind == "spike") {
        extra[at] = 7 * sd;
      } else if (kind == "dip") {
        extra[at] = -7 * sd;
      } else if (kind == "level_shift" || kind == "level_shift_down") {
        // A shift of 5 sd that lasts until the next anomaly's quiet zone.
        a.kind = "level_shift";
        a.length = gap / 2;
        for (size_t i = at; i < n; ++i) shift[i] += (kind == "level_shift" ? 5 : -5) * sd;
      } else if (kind == "variance") {
        a.length = 40;
        for (size_t i = at; i < at + 40; ++i) scale[i] = 5.0;
      }
      s.anomalies.push_back(a);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    e = ar * e + std::sqrt(1 - ar * ar) * noise(rng);
    double level = 100.0 + drift_sd * sd * static_cast<double>(i) / static_cast<double>(n);
    s.values[i] = level + shift[i] + extra[i] + sd * scale[i] * e;
  }
  return s;
}

}  // namespace stackwatch::localize::testing
