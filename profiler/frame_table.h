// Interned frames: each distinct Frame is stored once and named by a small
// id, with a count of the stacks that hold it. The stack totals of a
// churning machine hold ~20,000 stacks of ~9 frames made of only ~25,000
// distinct frames (every off-CPU stack shares schedule, __schedule, ...):
// stored per stack they cost ~100 MB, interned ~10 MB. A frame no stack
// holds any more is freed and its id reused, so the table is bounded by
// the stacks kept, not by the frames ever seen (new processes bring new
// addresses: ASLR).
#pragma once

#include <cstdint>
#include <deque>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "recording/recording.h"

namespace stackwatch::profiler {

class FrameTable {
 public:
  using Id = uint32_t;

  FrameTable() = default;
  // The index's hash and equality hold a pointer to slots_: a copy or a move
  // would leave them reading the old table.
  FrameTable(const FrameTable&) = delete;
  FrameTable& operator=(const FrameTable&) = delete;

  // The id of `frame` (equal in every field), adding it if new; the caller
  // holds one reference, given back with release().
  Id intern(const Frame& frame);
  // Another reference to a frame already held.
  void retain(Id id) { ++slots_[id].refs; }
  void release(Id id);
  const Frame& operator[](Id id) const { return slots_[id].frame; }
  // Distinct frames held now.
  size_t size() const { return index_.size(); }

 private:
  struct Slot {
    Frame frame;
    uint32_t refs = 0;
  };
  // The index holds ids and looks them up by the Frame they name (and by a
  // Frame not yet interned: heterogeneous lookup), so no frame is stored twice.
  struct Hash {
    using is_transparent = void;
    const std::deque<Slot>* slots;
    size_t operator()(Id id) const { return (*this)((*slots)[id].frame); }
    size_t operator()(const Frame& f) const;
  };
  struct Equal {
    using is_transparent = void;
    const std::deque<Slot>* slots;
    bool operator()(Id a, Id b) const { return a == b; }
    bool operator()(const Frame& a, Id b) const { return same((*slots)[b].frame, a); }
    bool operator()(Id a, const Frame& b) const { return same((*slots)[a].frame, b); }
    static bool same(const Frame& a, const Frame& b);
  };

  // A deque: growing it neither moves the frames nor holds the old and the
  // new array at once (a vector's doubling did: 3.3 MB of a churning
  // machine's 27 MB heap peak, measured with heaptrack).
  std::deque<Slot> slots_;
  std::vector<Id> free_;  // slots of released frames, reused first
  std::unordered_set<Id, Hash, Equal> index_{0, Hash{&slots_}, Equal{&slots_}};
};

}  // namespace stackwatch::profiler
