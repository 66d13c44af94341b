// Call tree merging, flamegraph.pl's alphabetical order, exact widths, and
// elision of narrow frames without losing weight.
#include <gtest/gtest.h>

#include <map>

#include "flamegraph/flame_layout.h"
#include "flamegraph/frame_tree.h"

namespace stackwatch::flamegraph {
namespace {

FrameTree tree_of(const std::vector<FoldedStack>& stacks) {
  FrameTree t;
  for (const auto& s : stacks) t.add(s);
  return t;
}

// "depth:name" -> rect, for exact lookups.
std::map<std::string, FrameRect> by_name(const FlameLayout& l) {
  std::map<std::string, FrameRect> m;
  for (const FrameRect& f : l.frames) m[std::to_string(f.depth) + ":" + std::string(f.name)] = f;
  return m;
}

TEST(FrameTree, MergesByNamePerParent) {
  FrameTree t = tree_of({{{"a", "b", "c"}, 1}, {{"a", "b", "d"}, 2}, {{"a", "b"}, 3}, {{"a", "e"}, 4},
                         {{"a", "b", "c"}, 5}, {{"x", "b"}, 7}});
  EXPECT_EQ(t.total(), 22u);
  auto top = t.children(FrameTree::kRoot);
  ASSERT_EQ(top.size(), 2u);
  const FrameNode& a = t.node(top[0]);
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.weight, 15u);
  EXPECT_EQ(a.self, 0u);
  auto a_kids = t.children(top[0]);
  ASSERT_EQ(a_kids.size(), 2u);
  const FrameNode& b = t.node(a_kids[0]);
  EXPECT_EQ(b.name, "b");
  EXPECT_EQ(b.weight, 11u);
  EXPECT_EQ(b.self, 3u);
  auto b_kids = t.children(a_kids[0]);
  ASSERT_EQ(b_kids.size(), 2u);
  EXPECT_EQ(t.node(b_kids[0]).name, "c");
  EXPECT_EQ(t.node(b_kids[0]).weight, 6u);  // the two "a;b;c" lines merged
  EXPECT_EQ(t.node(b_kids[1]).name, "d");
  EXPECT_EQ(t.node(a_kids[1]).name, "e");
  // "b" under "x" is another frame than "b" under "a".
  const FrameNode& x = t.node(top[1]);
  EXPECT_EQ(x.name, "x");
  EXPECT_EQ(t.node(t.children(top[1])[0]).weight, 7u);
  EXPECT_EQ(t.size(), 8u);  // all, a, b, c, d, e, x, x;b
}

TEST(FrameTree, SiblingsInByteOrderLikeFlamegraphPl) {
  FrameTree t = tree_of({{{"root", "b"}, 1}, {{"root", "a"}, 1}, {{"root", "_x"}, 1}, {{"root", "B"}, 1},
                         {{"root", "a2"}, 1}});
  std::vector<std::string> names;
  for (NodeId c : t.children(t.children(FrameTree::kRoot)[0])) names.emplace_back(t.node(c).name);
  EXPECT_EQ(names, (std::vector<std::string>{"B", "_x", "a", "a2", "b"}));
}

TEST(FrameTree, BaseWeightsForDifferentials) {
  FrameTree t;
  t.add({{"a", "b"}, 5}, Profile::kCurrent);
  t.add({{"a", "b"}, 2}, Profile::kBase);
  t.add({{"a", "gone"}, 4}, Profile::kBase);
  EXPECT_EQ(t.total(), 5u);
  EXPECT_EQ(t.base_total(), 6u);
  auto kids = t.children(t.children(FrameTree::kRoot)[0]);
  ASSERT_EQ(kids.size(), 2u);
  EXPECT_EQ(t.node(kids[0]).weight, 5u);
  EXPECT_EQ(t.node(kids[0]).base_weight, 2u);
  EXPECT_EQ(t.node(kids[1]).weight, 0u);
  EXPECT_EQ(t.node(kids[1]).base_weight, 4u);
}

TEST(FlameLayout, ExactStartsAndWidthsInPreOrder) {
  FrameTree t = tree_of({{{"a", "b", "c"}, 6}, {{"a", "b", "d"}, 2}, {{"a", "b"}, 3}, {{"a", "e"}, 4}});
  FlameLayout l = layout_flame(t, 0);
  ASSERT_EQ(l.frames.size(), 6u);
  std::vector<std::string> order;
  for (const auto& f : l.frames) order.emplace_back(f.name);
  EXPECT_EQ(order, (std::vector<std::string>{"all", "a", "b", "c", "d", "e"}));
  auto m = by_name(l);
  EXPECT_EQ(m["1:a"].start, 0u);
  EXPECT_EQ(m["1:a"].weight, 15u);
  EXPECT_EQ(m["2:b"].start, 0u);
  EXPECT_EQ(m["2:b"].weight, 11u);
  EXPECT_EQ(m["3:c"].start, 0u);
  EXPECT_EQ(m["3:c"].weight, 6u);
  EXPECT_EQ(m["3:d"].start, 6u);
  EXPECT_EQ(m["3:d"].weight, 2u);
  EXPECT_EQ(m["2:e"].start, 11u);  // after b's 11, including b's 3 self
  EXPECT_EQ(m["2:e"].weight, 4u);
  EXPECT_EQ(l.max_depth, 3u);
  EXPECT_EQ(l.total, 15u);
}

TEST(FlameLayout, ElisionKeepsTotalsAndPositions) {
  // "tiny" (1) and its subtree are narrower than 2: not drawn, but "wide"
  // still starts after it and every ancestor keeps its full weight.
  FrameTree t = tree_of({{{"p", "a_tiny", "deep", "deeper"}, 1}, {{"p", "wide"}, 50}, {{"p"}, 9},
                         {{"q"}, 40}});
  FlameLayout l = layout_flame(t, 2.0);
  auto m = by_name(l);
  EXPECT_EQ(l.total, 100u);
  EXPECT_EQ(m["0:all"].weight, 100u);
  EXPECT_EQ(m["1:p"].weight, 60u);
  EXPECT_EQ(m.count("2:a_tiny"), 0u);
  EXPECT_EQ(m.count("3:deep"), 0u);
  EXPECT_EQ(m["2:wide"].start, 1u);
  EXPECT_EQ(m["2:wide"].weight, 50u);
  EXPECT_EQ(m["1:q"].start, 60u);
  EXPECT_EQ(l.elided_frames, 1u);
  EXPECT_EQ(l.elided_weight, 1u);
  EXPECT_EQ(l.max_depth, 2u);  // the elided subtree does not make the graph taller
  uint64_t drawn_top = 0;
  for (const auto& f : l.frames)
    if (f.depth == 1) drawn_top += f.weight;
  EXPECT_EQ(drawn_top, 100u);
}

TEST(FlameLayout, FrameCapElidesTheLightestFirst) {
  // Weights: all 100, p 60, q 40, p;a 30, p;b 20, q;c 15, p;a;x 9, p;b;y 1 (8 frames).
  FrameTree t = tree_of({{{"p", "a", "x"}, 9}, {{"p", "a"}, 21}, {{"p", "b", "y"}, 1}, {{"p", "b"}, 19},
                         {{"p"}, 10}, {{"q", "c"}, 15}, {{"q"}, 25}});
  EXPECT_EQ(layout_flame(t, 0).frames.size(), 8u);
  FlameLayout l = layout_flame(t, 0, 6);
  std::vector<std::string> drawn;
  for (const auto& f : l.frames) drawn.emplace_back(f.name);
  EXPECT_EQ(drawn, (std::vector<std::string>{"all", "p", "a", "b", "q", "c"}));
  EXPECT_EQ(l.elided_weight, 10u);  // x (9) and y (1), still inside a and b
  EXPECT_EQ(l.total, 100u);
  // A cap of 5 drops c (15) as well.
  EXPECT_EQ(layout_flame(t, 0, 5).frames.size(), 5u);
  EXPECT_EQ(layout_flame(t, 0, 1).frames.size(), 1u);  // the root alone
}

TEST(FlameLayout, FrameCapWithTiesStaysWithinTheCap) {
  FrameTree t = tree_of({{{"a"}, 10}, {{"b"}, 10}, {{"c"}, 10}, {{"d"}, 5}});
  // Three frames tie at 10: a cap of 3 (root + 2) cannot keep them all, so none stays.
  FlameLayout l = layout_flame(t, 0, 3);
  EXPECT_EQ(l.frames.size(), 1u);
  EXPECT_EQ(layout_flame(t, 0, 4).frames.size(), 4u);
}

}  // namespace
}  // namespace stackwatch::flamegraph
