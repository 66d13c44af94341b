// Pressure stall information, /proc/pressure/{cpu,io,memory} (kernel
// Documentation/accounting/psi.rst):
//   some avg10=1.97 avg60=3.74 avg300=1.35 total=7210533
//   full avg10=0.00 avg60=0.00 avg300=0.00 total=0
// "some": share of time at least one task was stalled on the resource;
// "full": share of time all non-idle tasks were stalled at once. avgN are
// percentages over the last N seconds; total is cumulative microseconds.
// The cpu file has no "full" line before Linux 5.13.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace stackwatch::load {

struct PressureLine {
  double avg10 = 0;
  double avg60 = 0;
  double avg300 = 0;
  uint64_t total_us = 0;
};

struct Pressure {
  std::optional<PressureLine> some;
  std::optional<PressureLine> full;
};

// A line that is malformed is left out (nullopt); never throws.
Pressure parse_pressure(std::string_view text);

}  // namespace stackwatch::load
