// A coarse direct-mapped index over a sorted array of addresses: bucket i
// holds the first element at or above min + (i << shift). A lookup then
// binary-searches a handful of elements instead of the whole array, which
// for a million line-table rows saves ~15 cache misses per address.
// upper_bound_near goes first when lookups come in ascending order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace stackwatch::symbolizer {

class AddressBuckets {
 public:
  // keys must be sorted ascending; key(i) returns element i's address.
  template <typename Key>
  void build(size_t count, Key key) {
    buckets_.clear();
    count_ = count;
    if (count == 0) return;
    min_ = key(0);
    uint64_t span = key(count - 1) - min_;
    // About one bucket per element, at most 2^22 buckets (16 MB).
    shift_ = 0;
    while ((span >> shift_) > count || (span >> shift_) > (1u << 22)) ++shift_;
    size_t n = static_cast<size_t>(span >> shift_) + 2;
    buckets_.resize(n);
    buckets_.shrink_to_fit();
    // Bucket b's first element is the number of elements in the buckets
    // before it: counted, then summed, without the branch per element of a
    // merge of the two sequences (mispredicted about once per bucket).
    for (size_t i = 0; i < count; ++i) ++buckets_[static_cast<size_t>((key(i) - min_) >> shift_) + 1];
    for (size_t b = 1; b < n; ++b) buckets_[b] += buckets_[b - 1];
  }

  size_t memory_bytes() const { return buckets_.capacity() * sizeof(uint32_t); }

  // [lo, hi): the elements whose address lies in address's bucket; every
  // element before lo is below address, every one from hi on is above it.
  std::pair<size_t, size_t> window(uint64_t address) const {
    if (buckets_.empty() || address < min_) return {0, 0};
    uint64_t b = (address - min_) >> shift_;
    if (b + 1 >= buckets_.size()) return {buckets_.back(), count_};
    return {buckets_[b], buckets_[b + 1]};
  }

 private:
  std::vector<uint32_t> buckets_;
  uint64_t min_ = 0;
  unsigned shift_ = 0;
  size_t count_ = 0;
};

// As std::upper_bound over a sorted array of count elements (the position
// of the first element whose key is above address), found by looking at the
// elements from hint on (a previous answer): a batch looks its addresses up
// in ascending order, ~14 bytes apart over libc, so the answer is mostly the
// previous one or a few elements further, and a binary search's
// mispredicted branches (half of a warm lookup) are not paid. False when it
// is not within kNearSteps of hint (the caller then searches).
template <typename T, typename Key>
bool upper_bound_near(const T* elements, size_t count, size_t hint, uint64_t address, Key key, size_t& out) {
  constexpr size_t kNearSteps = 8;
  if (hint > count || (hint > 0 && key(elements[hint - 1]) > address)) return false;
  for (size_t i = hint; i < hint + kNearSteps; ++i) {
    if (i == count || key(elements[i]) > address) {
      out = i;
      return true;
    }
  }
  return false;
}

}  // namespace stackwatch::symbolizer
