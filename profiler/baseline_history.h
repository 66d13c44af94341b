// BaselineHistory: the last few intervals' on- and off-CPU stacks, kept for
// the live localizer's baseline (the normal intervals before an anomaly),
// in a compact form so that a churning machine costs a few MB, not the
// tens of MB full StackSamples cost (every Frame with its own copies of the
// module path, build-id and source file).
//
// What is kept is what the baseline's readers use (call graph, suspect
// ranking, baseline candidates, the differential flame graph): per frame
// the function, module, module offset, kernel and inlined flags; per
// sample tgid, tid, process and thread names, kind, off-CPU state, count,
// blocked ns, detail and label. Not kept: frame addresses, build-ids,
// source files, lines and columns, unknown reasons (no baseline reader
// looks at them; the frames of a binary's many processes are one entry
// this way), the BPF stack ids (valid within their interval only) and the
// memory/I-O fields (zero for on/off-CPU stacks). Anomalous intervals keep
// only their index and length: a baseline never includes them.
//
// Frames, stacks (sequences of frames) and strings are interned in tables
// shared by the intervals, with reference counts: an interval that leaves
// the history frees what only it used, so the cost of forgetting is spread
// over the intervals and the tables hold only what the kept ones use.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "profiler/ref_table.h"
#include "recording/recording.h"

namespace stackwatch::profiler {

class BaselineHistory {
 public:
  // Keeps the last `intervals` intervals (normal or not).
  explicit BaselineHistory(size_t intervals) : capacity_(intervals) {}

  // Adds an interval, dropping the oldest beyond the capacity. Of a normal
  // interval the on- and off-CPU stacks are kept, in their order.
  void add(uint64_t index, double seconds, bool anomalous, const std::vector<StackSample>& stacks);

  struct Baseline {
    std::vector<StackSample> stacks;
    double seconds = 0;
    std::vector<uint64_t> intervals;
  };
  // The normal intervals before interval `until`, with the stacks of
  // process `tgid` only (0: every process, as ProcessFilter reads it).
  Baseline baseline(uint64_t until = UINT64_MAX, uint32_t tgid = 0) const;

  size_t intervals() const { return intervals_.size(); }
  size_t normal_intervals() const;
  size_t samples() const;
  size_t frame_count() const { return frames_.size(); }
  size_t stack_count() const { return stacks_.size(); }
  size_t string_count() const { return strings_.size(); }
  // Heap bytes held, estimated (tables, nodes, sample vectors).
  size_t memory_bytes() const;

 private:
  static constexpr uint32_t kNoLabel = UINT32_MAX;
  struct CompactFrame {
    uint32_t function;  // string ids
    uint32_t module;
    uint64_t module_offset;
    bool kernel;
    bool inlined;
    bool operator==(const CompactFrame&) const = default;
  };
  struct FrameHash {
    size_t operator()(const CompactFrame& f) const;
  };
  struct StackHash {
    size_t operator()(const std::vector<uint32_t>& frames) const;
  };
  struct CompactSample {
    uint32_t tgid;
    uint32_t tid;
    uint32_t process_name;  // string ids
    uint32_t thread_name;
    uint32_t detail;
    uint32_t label;  // kNoLabel: none
    uint32_t stack;  // in stacks_: frame ids, innermost first
    StackKind kind;
    OffCpuState off_state;
    uint64_t count;
    uint64_t off_ns;
  };
  struct Entry {
    uint64_t index;
    double seconds;
    bool anomalous;
    std::vector<CompactSample> samples;
  };

  CompactSample compact(const StackSample& s);
  void release(const CompactSample& s);
  StackSample expand(const CompactSample& s) const;

  size_t capacity_;
  std::deque<Entry> intervals_;
  RefTable<std::string> strings_;
  RefTable<CompactFrame, FrameHash> frames_;
  RefTable<std::vector<uint32_t>, StackHash> stacks_;
};

}  // namespace stackwatch::profiler
