// Interned frames (see frame_table.h).
#include "profiler/frame_table.h"

#include <functional>

namespace stackwatch::profiler {

size_t FrameTable::Hash::operator()(const Frame& f) const {
  std::hash<std::string_view> h;
  size_t v = std::hash<uint64_t>()(f.address);
  auto mix = [&v](size_t x) { v ^= x + 0x9e3779b97f4a7c15ULL + (v << 6) + (v >> 2); };
  mix(h(f.function));
  mix(h(f.module));
  mix(std::hash<uint64_t>()(f.module_offset));
  mix(h(f.file));
  mix((static_cast<size_t>(f.line) << 32) ^ f.column);
  mix((f.inlined ? 1u : 0u) | (f.kernel ? 2u : 0u));
  return v;
}

bool FrameTable::Equal::same(const Frame& a, const Frame& b) {
  return a.address == b.address && a.module_offset == b.module_offset && a.line == b.line && a.column == b.column &&
         a.inlined == b.inlined && a.kernel == b.kernel && a.function == b.function && a.module == b.module &&
         a.file == b.file && a.build_id == b.build_id && a.unknown_reason == b.unknown_reason;
}

FrameTable::Id FrameTable::intern(const Frame& frame) {
  auto it = index_.find(frame);
  if (it != index_.end()) {
    ++slots_[*it].refs;
    return *it;
  }
  Id id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    // Ids index slots_; the index's hasher reads slots_ through a pointer
    // to the deque object, not to its storage.
    id = static_cast<Id>(slots_.size());
    slots_.emplace_back();
  }
  slots_[id].frame = frame;
  slots_[id].refs = 1;
  index_.insert(id);
  return id;
}

void FrameTable::release(Id id) {
  Slot& slot = slots_[id];
  if (--slot.refs > 0) return;
  index_.erase(id);
  { Frame gone = std::move(slot.frame); }  // its strings are freed now (assigning would keep their buffers)
  slot.frame = Frame{};
  free_.push_back(id);
}

}  // namespace stackwatch::profiler
