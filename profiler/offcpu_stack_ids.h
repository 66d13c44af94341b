// The off-CPU stack id space: two kernel stack maps recycled in turn, with
// ids that stay meaningful after their map is recycled (see offcpu.bpf.c).
//
// BPF stores every off-CPU stack id as (tag << id_bits) | id, where the tag
// is the value of its `stack_epoch` global at switch-out and tag & 1 the
// map the id is in. At each interval flip, recycle() copies what is left in
// the map not in use (the previous tag's), clears it, and hands out a new
// tag for it; a sleeping thread's id taken long ago is then answered from
// that copy. keep_referenced() drops the copies no thread refers to any
// more (absent from two consecutive scans of the in-flight maps, which
// covers an id on its way from one map to the next). So the kernel maps hold
// what one interval takes, and user space what the sleepers still need.
//
// Single-threaded (the record loop). The maps are behind an interface so
// tests can feed fixture stacks.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace stackwatch::profiler {

class OffCpuStackIds {
 public:
  // The two kernel stack maps (slot 0 and 1).
  class StackMaps {
   public:
    virtual ~StackMaps() = default;
    // Every (id, instruction pointers) now in the map of slot, which is then emptied.
    virtual std::vector<std::pair<uint32_t, std::vector<uint64_t>>> take_all(int slot) = 0;
    virtual bool lookup(int slot, uint32_t id, std::vector<uint64_t>& ips) const = 0;
  };

  // id_bits: the bits a map's own ids need (its entries must be below 1 << id_bits).
  OffCpuStackIds(uint32_t id_bits, StackMaps& maps);

  // The tag BPF must use now (set it before any switch-out can happen).
  uint32_t tag() const { return current_; }
  // Recycles the map of the previous tag and returns the tag to set in BPF
  // (the same one when every tag is still referenced: then nothing is recycled).
  uint32_t recycle();
  // The stack of a tagged id (false: no such stack, e.g. a negative id).
  bool read(int32_t tagged_id, std::vector<uint64_t>& ips) const;
  // Call after each drain with every tagged id still in flight (threads off
  // the CPU, pending blocks, the counts being filled).
  void keep_referenced(const std::vector<int32_t>& tagged_ids);

  size_t copied_stacks() const { return copied_.size(); }  // held in user space now
  uint64_t recycled_stacks() const { return recycled_; }   // taken out of the maps so far
  uint32_t max_tags() const { return max_tags_; }

 private:
  struct Copy {
    std::vector<uint64_t> ips;
    uint64_t last_referenced = 0;  // scan number
  };
  uint32_t tag_of(int32_t tagged_id) const { return static_cast<uint32_t>(tagged_id) >> id_bits_; }
  uint32_t id_of(int32_t tagged_id) const { return static_cast<uint32_t>(tagged_id) & ((1u << id_bits_) - 1); }
  bool live(uint32_t tag) const { return tag == current_ || (previous_ && tag == *previous_); }

  uint32_t id_bits_;
  uint32_t max_tags_;
  StackMaps& maps_;
  uint32_t current_ = 0;
  std::optional<uint32_t> previous_;  // the tag of the other map, until recycled
  std::unordered_map<int32_t, Copy> copied_;  // tagged id -> stack
  uint64_t scan_ = 0;
  uint64_t recycled_ = 0;
};

}  // namespace stackwatch::profiler
