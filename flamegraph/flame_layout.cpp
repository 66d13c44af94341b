// Pre-order layout of a frame tree with elision of narrow frames (see flame_layout.h).
#include "flamegraph/flame_layout.h"

#include <algorithm>
#include <functional>

namespace stackwatch::flamegraph {

namespace {

double capped_min_weight(const FrameTree& tree, double min_weight, size_t max_frames) {
  if (max_frames == SIZE_MAX) return min_weight;
  std::vector<uint64_t> weights;
  for (NodeId i = 0; i < tree.size(); ++i) {
    uint64_t w = tree.node(i).weight;
    if (w > 0 && static_cast<double>(w) >= min_weight) weights.push_back(w);
  }
  if (weights.size() <= max_frames) return min_weight;
  if (max_frames == 0) return static_cast<double>(tree.total()) + 1;
  // The max_frames-th heaviest weight is the threshold, unless frames tied
  // with it would exceed the cap: then they are all elided (weights are
  // integers, so +0.5 means "strictly heavier").
  auto nth = weights.begin() + static_cast<std::ptrdiff_t>(max_frames - 1);
  std::nth_element(weights.begin(), nth, weights.end(), std::greater<>());
  const uint64_t w = *nth;
  size_t at_least = static_cast<size_t>(std::count_if(weights.begin(), weights.end(), [w](uint64_t x) { return x >= w; }));
  return std::max(min_weight, static_cast<double>(w) + (at_least > max_frames ? 0.5 : 0.0));
}

}  // namespace

FlameLayout layout_flame(const FrameTree& tree, double min_weight, size_t max_frames) {
  FlameLayout out;
  out.total = tree.total();
  if (tree.total() == 0) return out;
  min_weight = capped_min_weight(tree, min_weight, max_frames);
  out.min_weight = min_weight;

  // Iterative DFS: stacks can be hundreds of frames deep.
  struct Pending {
    NodeId node;
    uint64_t start;
  };
  std::vector<Pending> todo{{FrameTree::kRoot, 0}};
  std::vector<Pending> kids;
  while (!todo.empty()) {
    Pending p = todo.back();
    todo.pop_back();
    const FrameNode& n = tree.node(p.node);
    out.frames.push_back(FrameRect{p.node, n.name, n.kind, n.depth, p.start, n.weight, n.base_weight});
    out.max_depth = std::max(out.max_depth, n.depth);
    uint64_t x = p.start;
    kids.clear();
    for (NodeId c : tree.children(p.node)) {
      const FrameNode& cn = tree.node(c);
      if (cn.weight == 0) continue;
      if (static_cast<double>(cn.weight) < min_weight) {
        ++out.elided_frames;
        out.elided_weight += cn.weight;
      } else {
        kids.push_back({c, x});
      }
      x += cn.weight;  // an elided frame still takes its place in the parent
    }
    // Reverse so the leftmost child is drawn first (pre-order, left to right).
    for (auto it = kids.rbegin(); it != kids.rend(); ++it) todo.push_back(*it);
  }
  return out;
}

}  // namespace stackwatch::flamegraph
