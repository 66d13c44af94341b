// Flame graph layout in weight units: which frames are drawn, where and how
// wide, before any pixels. Kept apart from the SVG so tests can check merges
// and widths exactly, and so other renderers can reuse it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "flamegraph/frame_tree.h"

namespace stackwatch::flamegraph {

struct FrameRect {
  NodeId node = 0;
  std::string_view name;
  FrameKind kind = FrameKind::kUser;
  uint32_t depth = 0;        // 0 = the root ("all")
  uint64_t start = 0;        // offset from the left edge, in weight units
  uint64_t weight = 0;       // width, in weight units (current profile)
  uint64_t base_weight = 0;  // inclusive weight in the base profile (differential)
};

struct FlameLayout {
  std::vector<FrameRect> frames;  // pre-order: a parent, then its children left to right
  uint64_t total = 0;             // the root's weight: elision never changes it
  uint32_t max_depth = 0;         // deepest drawn frame
  size_t elided_frames = 0;       // subtrees not drawn for being too narrow
  uint64_t elided_weight = 0;     // weight of the elided subtrees, drawn as part of their parents
  double min_weight = 0;          // the threshold applied (raised by max_frames)
};

// Lays out the tree. A frame lighter than min_weight is not drawn, nor are its
// descendants; its weight stays in its parent's width (it shows as the
// parent's uncovered remainder), so totals and every drawn width are exact.
// Frames with no current weight (only in a base profile) are not drawn.
//
// max_frames caps how many frames are drawn: when more would pass min_weight,
// the threshold rises to the lightest weight that keeps the count within the
// cap. A frame is never heavier than its parent, so the drawn frames stay a
// connected tree from the root and every one of them is heavier than every
// elided one.
FlameLayout layout_flame(const FrameTree& tree, double min_weight, size_t max_frames = SIZE_MAX);

}  // namespace stackwatch::flamegraph
