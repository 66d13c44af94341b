// The totals of a recording: every interval's stacks summed by identity
// (thread, kind, state, and the resolved frame list), which is what
// stacks.json and the folded files hold at any moment.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "flamegraph/folded.h"
#include "recording/recording.h"

namespace stackwatch::profiler {

class StackTotals {
 public:
  void add(const std::vector<StackSample>& interval_stacks);
  std::vector<StackSample> stacks() const;  // largest first
  uint64_t samples(StackKind kind) const;
  size_t size() const { return index_.size(); }
  DropCounters drops;

 private:
  std::vector<StackSample> stacks_;
  std::unordered_map<std::string, size_t> index_;
};

// The identity of a stack across intervals: process, thread, kind, state and
// the frames (module + function + address of each).
std::string stack_identity(const StackSample& s);

// Folded views. Frame names get "_[k]" for kernel and "_[i]" for inlined
// frames, the annotations flamegraph tools colour by. `period_us` converts
// on-CPU samples to microseconds for the wall-clock view.
enum class FoldedWeight { kSamples, kOffCpuMicros, kWallMicros };
std::vector<flamegraph::FoldedStack> to_folded(const std::vector<StackSample>& stacks, FoldedWeight weight,
                                               double period_us = 0);

}  // namespace stackwatch::profiler
