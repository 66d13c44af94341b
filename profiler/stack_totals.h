// The totals of a recording: every interval's stacks summed by identity
// (thread, kind, state, and the resolved frame list), which is what
// stacks.json and the folded files hold at any moment.
//
// Bounded for long runs on a churning machine: a stack leaves the live view
// (exact identity, addresses included) when it gets nothing for
// idle_intervals intervals, and is merged into an aged entry with the
// stacks that differ only in what the output files do not separate any
// more: addresses within a function (ASLR), the thread id, and, once its
// process has exited, the pid, so a thousand short-lived `sh` running the
// same code are one entry (with the pid and tid of the first). Counts, blocked time, bytes and labels are
// summed, never dropped: the totals of the files stay exact, only the
// per-pid/per-tid split and the addresses of old stacks are coarsened.
//
// Frames are interned (frame_table.h): a stack holds frame ids, and a frame
// shared by many stacks is stored once.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "flamegraph/folded.h"
#include "profiler/frame_table.h"
#include "profiler/process_exists.h"
#include "recording/recording.h"
#include "recording/stacks_json.h"

namespace stackwatch::profiler {

class StackTotals {
 public:
  // A minute at the default 5 s interval: a stack that recurs within it
  // keeps its exact identity; rarer ones are merged.
  static constexpr uint64_t kIdleIntervals = 6;
  // Aged entries kept with their own frames. Beyond it the lightest are
  // folded into one "[other stacks]" entry per process (and kind, state,
  // thread name): a busy machine's long tail (a stripped compiler preempted
  // at a new address every time) costs a bounded table, and its weight is
  // still in the totals. ~0.5 KiB an entry (24 frames; the frames
  // themselves are shared through the frame table).
  static constexpr size_t kMaxAgedEntries = 4096;
  // The frame that stands for the folded stacks.
  static constexpr const char* kOtherStacks = "[other stacks]";

  // alive(tgid): whether a process still exists (exits are not all
  // reported: only processes sampled on-CPU get an exit event).
  explicit StackTotals(uint64_t idle_intervals = kIdleIntervals,
                       std::function<bool(uint32_t)> alive = process_exists,
                       size_t max_aged_entries = kMaxAgedEntries);

  // Stacks of the current interval (any number of calls per interval).
  void add(const std::vector<StackSample>& interval_stacks);
  // Ends the current interval: stacks idle for idle_intervals intervals
  // leave the live view, merged without their pid if their process exited:
  // one of exited_tgids (ProcessTracker::after_drain) or found gone (checked
  // for those without stacks in this interval). Without it nothing ages:
  // call it once per interval.
  void end_interval(const std::vector<uint32_t>& exited_tgids = {});
  std::vector<StackSample> stacks() const;  // live and aged; by tgid, largest first

 private:
  struct Entry;

 public:
  // The same stacks in the same order, each built when asked for: what the
  // output files are written from, without a copy of every stack. Valid
  // until the next add() or end_interval().
  class Ordered : public StackSource {
   public:
    size_t size() const override { return entries_.size(); }
    const StackSample& header(size_t i) const override;
    const StackSample& get(size_t i, StackSample& scratch) const override;

   private:
    friend class StackTotals;
    std::vector<const Entry*> entries_;
    const FrameTable* frames_ = nullptr;
  };
  Ordered ordered() const;
  uint64_t samples(StackKind kind) const;
  size_t size() const { return live_.size() + aged_.size(); }
  size_t live_size() const { return live_.size(); }
  // Distinct frames held (interned) by all the stacks.
  size_t frame_count() const { return frames_.size(); }

  struct Aging {
    uint64_t aged = 0;             // live entries that left the live view
    uint64_t merged = 0;           // ... of which were summed into an existing aged entry
    uint64_t exited_processes = 0;  // processes retired
    uint64_t folded = 0;            // aged entries folded into "[other stacks]"
  };
  const Aging& aging() const { return aging_; }
  // What was merged, for stacks.json's "_stackwatch" ("aged_out").
  nlohmann::json aging_json() const;
  DropCounters drops;

 private:
  struct Entry {
    StackSample sample;                    // without frames: they are frame_ids
    std::vector<FrameTable::Id> frame_ids;  // one reference held on each
    uint64_t last_interval = 0;  // interval that last added to it
    uint64_t first_seen = 0;     // insertion order: the first of merged stacks names them
    bool exited = false;         // its process exited (aged: keyed without pid)
  };
  void age_out(Entry entry, bool exited);
  void retire_processes(const std::vector<uint32_t>& tgids);
  // Folds the lightest aged entries into "[other stacks]" when there are too many.
  void fold_tail();
  // Moves the live entries that match out of the live view, oldest first.
  template <typename Match>
  void age_out_live(Match match);
  void release_frames(Entry& entry);
  // An aged entry is found by a 128-bit hash of its aged_identity(), not
  // the text: that is the module path and name of every frame (1-2 KiB a
  // stack), which kept as the key doubled what a full table of aged
  // entries holds. Two identities sharing 128 bits among a few thousand
  // entries: never, in practice.
  struct AgedKey {
    uint64_t first = 0, second = 0;
    bool operator==(const AgedKey&) const = default;
  };
  struct AgedKeyHash {
    size_t operator()(const AgedKey& k) const { return static_cast<size_t>(k.first); }
  };
  using AgedMap = std::unordered_map<AgedKey, Entry, AgedKeyHash>;
  AgedKey aged_key(const Entry& entry, bool exited) const;

  FrameTable frames_;  // the entries' frames
  uint64_t idle_intervals_;
  std::function<bool(uint32_t)> alive_;
  size_t max_aged_;
  uint64_t interval_ = 0;  // the current interval
  uint64_t inserted_ = 0;
  std::unordered_map<std::string, Entry> live_;  // thread, kind, names and frame ids -> entry
  AgedMap aged_;  // aged_identity (hashed) -> entry
  Aging aging_;
};

// The identity of a stack across intervals: process, thread, kind, state and
// the frames (module + function + address of each).
std::string stack_identity(const StackSample& s);
// The identity an aged stack is merged under: kind, state, detail, process
// and thread names, and the frames by module and function (module offset
// when unnamed), plus the tgid unless its process exited.
std::string aged_identity(const StackSample& s, bool exited);

// The detail of memory stacks that count user page faults.
inline constexpr const char* kPageFaultDetail = "page-fault";
// A block I/O entry ("block read" / "block write") rather than a system call's.
bool is_block_io(const StackSample& s);

// Folded views. Frame names get "_[k]" for kernel and "_[i]" for inlined
// frames, the annotations flamegraph tools colour by. `period_us` converts
// on-CPU samples to microseconds for the wall-clock view.
// Memory and I/O views (record --memory / --io): outstanding bytes per
// allocating stack, user page faults, bytes moved by I/O system calls (the
// operation and fd kind as a leaf "[write file]"), block I/O latency.
enum class FoldedWeight { kSamples, kOffCpuMicros, kWallMicros, kMemoryBytes, kPageFaults, kIoBytes, kBlockIoMicros };
std::vector<flamegraph::FoldedStack> to_folded(const std::vector<StackSample>& stacks, FoldedWeight weight,
                                               double period_us = 0);
std::vector<flamegraph::FoldedStack> to_folded(const StackSource& stacks, FoldedWeight weight,
                                               double period_us = 0);

}  // namespace stackwatch::profiler
