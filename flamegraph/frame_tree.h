// The call tree of a profile: stacks merged by frame name per parent, as
// flamegraph.pl merges them, with inclusive and self weights, and optionally
// a second (base) profile's weights on the same nodes for differential graphs.
// Children are ordered alphabetically (byte order), so the layout is the one
// flamegraph.pl draws from sorted folded lines.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "flamegraph/folded.h"
#include "flamegraph/frame_kind.h"

namespace stackwatch::flamegraph {

using NodeId = uint32_t;

struct FrameNode {
  std::string_view name;       // owned by the tree
  FrameKind kind = FrameKind::kUser;
  NodeId parent = 0;
  uint32_t depth = 0;          // 0 for the root ("all")
  uint64_t weight = 0;         // inclusive, current profile
  uint64_t self = 0;           // stacks ending here, current profile
  uint64_t base_weight = 0;    // inclusive, base profile (differential only)
  uint64_t base_self = 0;
};

// Which profile a stack belongs to when building a differential tree.
enum class Profile { kCurrent, kBase };

class FrameTree {
 public:
  static constexpr NodeId kRoot = 0;

  explicit FrameTree(std::string root_name = "all");
  // Nodes point into the tree's own name storage: moving keeps it, a copy
  // would not, so there is none.
  FrameTree(const FrameTree&) = delete;
  FrameTree& operator=(const FrameTree&) = delete;
  FrameTree(FrameTree&&) = default;
  FrameTree& operator=(FrameTree&&) = default;

  // Adds one stack, outermost frame first. Kinds come from the names.
  void add(const FoldedStack& stack, Profile profile = Profile::kCurrent);
  void add(std::span<const std::string_view> frames, uint64_t weight, Profile profile = Profile::kCurrent);
  // Same, with kinds known from resolved frames (kinds.size() == frames.size()).
  void add(std::span<const std::string_view> frames, std::span<const FrameKind> kinds, uint64_t weight,
           Profile profile = Profile::kCurrent);

  // Capacity for about this many more frames (a hint; merging makes fewer nodes).
  void reserve(size_t frames);

  size_t size() const { return nodes_.size(); }
  const FrameNode& node(NodeId id) const { return nodes_[id]; }
  const FrameNode& root() const { return nodes_[kRoot]; }
  uint64_t total() const { return nodes_[kRoot].weight; }
  uint64_t base_total() const { return nodes_[kRoot].base_weight; }
  uint32_t max_depth() const { return max_depth_; }

  // Children of a node in alphabetical order. Valid until the next add().
  std::span<const NodeId> children(NodeId id) const;

 private:
  uint32_t intern(std::string_view name, const FrameKind* kind);
  NodeId child(NodeId parent, uint32_t name_id);
  void add_impl(std::span<const std::string_view> frames, const FrameKind* kinds, uint64_t weight,
                Profile profile);
  void index_children() const;

  std::deque<std::string> name_storage_;  // deque: string_views into it stay valid
  std::unordered_map<std::string_view, uint32_t> name_ids_;
  std::vector<std::string_view> names_;  // by name id
  std::vector<FrameKind> name_kinds_;
  std::vector<FrameNode> nodes_;
  std::vector<uint32_t> node_name_ids_;
  // (parent, name id) -> child, open addressing: millions of entries for
  // 100,000 distinct stacks, where a node-based map spends most of the time
  // allocating and chasing pointers.
  struct ChildSlot {
    uint64_t key = kEmptyKey;
    NodeId child = 0;
  };
  static constexpr uint64_t kEmptyKey = ~uint64_t{0};
  std::vector<ChildSlot> child_slots_;
  size_t child_count_ = 0;
  void grow_child_index();
  std::vector<std::string_view> scratch_;  // frames of the stack being added
  std::vector<NodeId> last_path_;          // nodes of the previous stack, outermost first
  std::vector<uint32_t> last_path_names_;
  uint32_t max_depth_ = 0;

  // Children in CSR form, rebuilt lazily after adds.
  mutable bool children_valid_ = false;
  mutable std::vector<uint32_t> first_child_;
  mutable std::vector<NodeId> children_;
};

}  // namespace stackwatch::flamegraph
