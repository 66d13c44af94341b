// Recycling the off-CPU stack maps (see offcpu_stack_ids.h).
#include "profiler/offcpu_stack_ids.h"

#include <unordered_set>

namespace stackwatch::profiler {

OffCpuStackIds::OffCpuStackIds(uint32_t id_bits, StackMaps& maps)
    : id_bits_(id_bits < 1 ? 1 : (id_bits > 29 ? 29 : id_bits)), max_tags_(1u << (31 - id_bits_)), maps_(maps) {}

uint32_t OffCpuStackIds::recycle() {
  if (previous_) {
    // Nothing writes to the previous tag's map any more (BPF took its ids in
    // the current one for a whole interval): copy what is left, then empty it.
    uint32_t previous = *previous_;
    for (auto& [id, ips] : maps_.take_all(static_cast<int>(previous & 1))) {
      int32_t tagged = static_cast<int32_t>((previous << id_bits_) | id);
      copied_[tagged] = Copy{std::move(ips), scan_};
      ++recycled_;
    }
    previous_.reset();
  }
  // The next tag names the emptied map (the other parity) and must not be
  // one whose old ids are still answered from copies.
  std::unordered_set<uint32_t> held;
  for (const auto& [tagged, copy] : copied_) held.insert(tag_of(tagged));
  uint32_t t = (current_ + 1) % max_tags_;
  for (uint32_t tries = 0; tries < max_tags_ / 2; ++tries, t = (t + 2) % max_tags_) {
    if (t == current_ || held.contains(t)) continue;
    previous_ = current_;
    current_ = t;
    return current_;
  }
  return current_;  // every tag held (not seen in practice): go on in the current map
}

bool OffCpuStackIds::read(int32_t tagged_id, std::vector<uint64_t>& ips) const {
  ips.clear();
  if (tagged_id < 0) return false;
  uint32_t tag = tag_of(tagged_id);
  if (live(tag)) return maps_.lookup(static_cast<int>(tag & 1), id_of(tagged_id), ips);
  auto it = copied_.find(tagged_id);
  if (it == copied_.end()) return false;
  ips = it->second.ips;
  return true;
}

void OffCpuStackIds::keep_referenced(const std::vector<int32_t>& tagged_ids) {
  ++scan_;
  for (int32_t id : tagged_ids) {
    if (id < 0 || live(tag_of(id))) continue;
    auto it = copied_.find(id);
    if (it != copied_.end()) it->second.last_referenced = scan_;
  }
  std::erase_if(copied_, [&](const auto& entry) { return entry.second.last_referenced + 1 < scan_; });
}

}  // namespace stackwatch::profiler
