// Merging stacks into a call tree (see frame_tree.h).
#include "flamegraph/frame_tree.h"

#include <algorithm>
#include <numeric>

namespace stackwatch::flamegraph {

FrameTree::FrameTree(std::string root_name) {
  name_storage_.push_back(std::move(root_name));
  nodes_.push_back(FrameNode{name_storage_.back(), FrameKind::kUser, kRoot, 0, 0, 0, 0, 0});
  node_name_ids_.push_back(UINT32_MAX);  // the root is nobody's child
}

uint32_t FrameTree::intern(std::string_view name, const FrameKind* kind) {
  auto it = name_ids_.find(name);
  if (it != name_ids_.end()) return it->second;
  name_storage_.emplace_back(name);
  uint32_t id = static_cast<uint32_t>(name_kinds_.size());
  name_kinds_.push_back(kind ? *kind : classify_frame(name));
  names_.push_back(name_storage_.back());
  name_ids_.emplace(name_storage_.back(), id);
  return id;
}

namespace {

// Fibonacci hashing: spreads the (parent, name) pairs, which are dense small
// integers, over the table.
size_t slot_of(uint64_t key, size_t mask) { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 17) & mask; }

}  // namespace

void FrameTree::reserve(size_t frames) {
  nodes_.reserve(nodes_.size() + frames);
  node_name_ids_.reserve(node_name_ids_.size() + frames);
  size_t want = 16;
  while (want < 2 * (child_count_ + frames)) want *= 2;
  if (want > child_slots_.size()) {
    std::vector<ChildSlot> old;
    old.swap(child_slots_);
    child_slots_.assign(want, ChildSlot{});
    for (const ChildSlot& s : old) {
      if (s.key == kEmptyKey) continue;
      size_t i = slot_of(s.key, want - 1);
      while (child_slots_[i].key != kEmptyKey) i = (i + 1) & (want - 1);
      child_slots_[i] = s;
    }
  }
}

void FrameTree::grow_child_index() { reserve(child_slots_.size()); }

NodeId FrameTree::child(NodeId parent, uint32_t name_id) {
  // Load factor at most one half keeps probe sequences short.
  if (2 * (child_count_ + 1) > child_slots_.size()) grow_child_index();
  const uint64_t key = (uint64_t{parent} << 32) | name_id;
  const size_t mask = child_slots_.size() - 1;
  size_t i = slot_of(key, mask);
  while (child_slots_[i].key != kEmptyKey) {
    if (child_slots_[i].key == key) return child_slots_[i].child;
    i = (i + 1) & mask;
  }
  child_slots_[i] = ChildSlot{key, static_cast<NodeId>(nodes_.size())};
  ++child_count_;
  {
    FrameNode n;
    n.name = names_[name_id];
    n.kind = name_kinds_[name_id];
    n.parent = parent;
    n.depth = nodes_[parent].depth + 1;
    max_depth_ = std::max(max_depth_, n.depth);
    nodes_.push_back(n);
    node_name_ids_.push_back(name_id);
    children_valid_ = false;
  }
  return child_slots_[i].child;
}

void FrameTree::add_impl(std::span<const std::string_view> frames, const FrameKind* kinds, uint64_t weight,
                         Profile profile) {
  if (weight == 0 || frames.empty()) return;
  const bool base = profile == Profile::kBase;
  NodeId at = kRoot;
  (base ? nodes_[at].base_weight : nodes_[at].weight) += weight;
  // Consecutive stacks usually share their outer frames (folded files are
  // sorted), so the previous stack's path answers most child lookups.
  bool same_path = true;
  for (size_t i = 0; i < frames.size(); ++i) {
    uint32_t name_id = intern(frames[i], kinds ? kinds + i : nullptr);
    if (same_path && i < last_path_.size() && last_path_names_[i] == name_id) {
      at = last_path_[i];
    } else {
      same_path = false;
      at = child(at, name_id);
      last_path_.resize(i);
      last_path_names_.resize(i);
      last_path_.push_back(at);
      last_path_names_.push_back(name_id);
    }
    (base ? nodes_[at].base_weight : nodes_[at].weight) += weight;
  }
  (base ? nodes_[at].base_self : nodes_[at].self) += weight;
}

void FrameTree::add(const FoldedStack& stack, Profile profile) {
  // Frames are short-lived views: intern() copies a name the first time only.
  scratch_.assign(stack.frames.begin(), stack.frames.end());
  add_impl(scratch_, nullptr, stack.weight, profile);
}

void FrameTree::add(std::span<const std::string_view> frames, uint64_t weight, Profile profile) {
  add_impl(frames, nullptr, weight, profile);
}

void FrameTree::add(std::span<const std::string_view> frames, std::span<const FrameKind> kinds, uint64_t weight,
                    Profile profile) {
  add_impl(frames, kinds.size() == frames.size() ? kinds.data() : nullptr, weight, profile);
}

void FrameTree::index_children() const {
  // Names get a rank in byte order once, so sorting siblings compares integers.
  std::vector<uint32_t> by_name(name_kinds_.size());
  std::iota(by_name.begin(), by_name.end(), 0u);
  std::sort(by_name.begin(), by_name.end(), [&](uint32_t a, uint32_t b) { return names_[a] < names_[b]; });
  std::vector<uint32_t> rank(by_name.size());
  for (uint32_t r = 0; r < by_name.size(); ++r) rank[by_name[r]] = r;

  const size_t n = nodes_.size();
  first_child_.assign(n + 1, 0);
  for (size_t i = 1; i < n; ++i) ++first_child_[nodes_[i].parent + 1];
  for (size_t i = 0; i < n; ++i) first_child_[i + 1] += first_child_[i];
  children_.assign(n > 0 ? n - 1 : 0, 0);
  std::vector<uint32_t> fill(first_child_.begin(), first_child_.end() - 1);
  for (size_t i = 1; i < n; ++i) children_[fill[nodes_[i].parent]++] = static_cast<NodeId>(i);
  for (size_t i = 0; i < n; ++i) {
    auto b = children_.begin() + first_child_[i], e = children_.begin() + first_child_[i + 1];
    if (e - b > 1)
      std::sort(b, e, [&](NodeId x, NodeId y) { return rank[node_name_ids_[x]] < rank[node_name_ids_[y]]; });
  }
  children_valid_ = true;
}

std::span<const NodeId> FrameTree::children(NodeId id) const {
  if (!children_valid_) index_children();
  return {children_.data() + first_child_[id], children_.data() + first_child_[id + 1]};
}

}  // namespace stackwatch::flamegraph
