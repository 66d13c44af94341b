// --load-threshold: which intervals count as "under load", so the record
// loop keeps their stacks apart (the old load_monitor kept the stacks of the
// moments when the load average or the CPU was above a threshold).
//
//   SPEC       := CONDITION ( "," CONDITION )*
//   CONDITION  := NUMBER                 cpu_util > NUMBER (percent, 0..100)
//               | NAME OP NUMBER         OP is one of > >= < <=
//   NAME       := a value name of load_snapshot.h (cpu_util, cpu1_util,
//                 load1, runq, psi_io_some, ctxt_per_s, ...)
// An interval exceeds the threshold when ANY condition holds; a value that is
// absent or NaN in the interval never holds. Examples:
//   --load-threshold 80                    total CPU above 80%
//   --load-threshold load1>4               1-minute load average above 4
//   --load-threshold cpu_util>80,psi_io_some>=10
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "profiler/load_snapshot.h"

namespace stackwatch::load {

class LoadThreshold {
 public:
  enum class Op { kGreater, kGreaterEqual, kLess, kLessEqual };
  struct Condition {
    std::string name;
    Op op = Op::kGreater;
    double limit = 0;
    bool operator==(const Condition&) const = default;
  };

  // Throws stackwatch::Error naming the bad part: an unknown value name, a
  // missing number, a percentage limit that can never be crossed.
  static LoadThreshold parse(std::string_view spec);

  bool exceeded(const LoadSnapshot& snapshot) const;

  // The conditions that held, for the log: "cpu_util 93.2 > 80"; empty when
  // none did.
  std::string explain(const LoadSnapshot& snapshot) const;

  // Canonical spelling: "cpu_util>80,load1>=4".
  std::string to_string() const;

  const std::vector<Condition>& conditions() const { return conditions_; }

 private:
  std::vector<Condition> conditions_;
};

}  // namespace stackwatch::load
