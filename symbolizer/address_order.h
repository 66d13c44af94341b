// The order in which a batch of addresses is looked up: ascending address
// (ties in input order), so consecutive lookups share index entries and line
// rows in the cache and a cold module reads its units front to back.
// Computed with an LSD radix sort on (address - lowest, index) packed into
// one 64-bit key, with passes over the address bits only: for 100,000
// addresses ~0.6 ms instead of std::sort's ~6 ms, which was as much as the
// lookups themselves on a warm module.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace stackwatch::symbolizer {

// No member initializers: the arrays below are written once, not zeroed
// first (zeroing them was a quarter of the sort).
struct OrderedAddress {
  uint64_t address;
  uint32_t index;  // into the caller's array
  bool operator==(const OrderedAddress&) const = default;
};

// address_order's result: an array of OrderedAddress.
class AddressOrder {
 public:
  explicit AddressOrder(size_t n) : items_(std::make_unique_for_overwrite<OrderedAddress[]>(n)), size_(n) {}
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  OrderedAddress* begin() { return items_.get(); }
  OrderedAddress* end() { return items_.get() + size_; }
  const OrderedAddress* begin() const { return items_.get(); }
  const OrderedAddress* end() const { return items_.get() + size_; }
  OrderedAddress& operator[](size_t i) { return items_[i]; }
  const OrderedAddress& operator[](size_t i) const { return items_[i]; }
  bool operator==(const std::vector<OrderedAddress>& other) const {
    return std::equal(begin(), end(), other.begin(), other.end());
  }

 private:
  std::unique_ptr<OrderedAddress[]> items_;
  size_t size_ = 0;
};

// The addresses in lookup order, each with its index: carried along so the
// lookup loop does not load addresses[index] (a cache miss per address once
// the order is shuffled). At most UINT32_MAX addresses.
inline AddressOrder address_order(std::span<const uint64_t> addresses) {
  const size_t n = addresses.size();
  AddressOrder order(n);
  if (n == 0) return order;
  auto [lo, hi] = std::minmax_element(addresses.begin(), addresses.end());
  const uint64_t base = *lo;
  const unsigned index_bits = static_cast<unsigned>(std::bit_width(n - 1));
  const unsigned span_bits = static_cast<unsigned>(std::bit_width(*hi - base));
  if (index_bits + span_bits > 64) {
    // Addresses too spread out to pack (not one module): compare pairs.
    for (uint32_t i = 0; i < n; ++i) order[i] = {addresses[i], i};
    std::stable_sort(order.begin(), order.end(),
                     [](const OrderedAddress& a, const OrderedAddress& b) { return a.address < b.address; });
    return order;
  }
  // Keys start in input order and each LSD pass is stable, so sorting on
  // the address bits alone leaves equal addresses in input order: the index
  // bits need no pass of their own (libc: 2 passes instead of 4). The first
  // pass reads the addresses and the last writes the order itself, so the
  // keys are never stored in input order: the cost is mostly page faults on
  // fresh buffers, ~0.8 us per 4 KiB.
  constexpr unsigned kDigitBits = 11;  // 2,048 counters: fit in L1
  const uint64_t index_mask = index_bits == 0 ? 0 : (~uint64_t{0} >> (64 - index_bits));
  const unsigned passes = std::max(1u, (span_bits + kDigitBits - 1) / kDigitBits);
  std::unique_ptr<uint64_t[]> keys, scratch;
  if (passes > 1) keys = std::make_unique_for_overwrite<uint64_t[]>(n);
  if (passes > 2) scratch = std::make_unique_for_overwrite<uint64_t[]>(n);
  for (unsigned pass = 0; pass < passes; ++pass) {
    const unsigned shift = index_bits + pass * kDigitBits;
    auto digit = [shift](uint64_t k) { return (k >> shift) & ((1u << kDigitBits) - 1); };
    auto key = [&](size_t i) { return pass == 0 ? ((addresses[i] - base) << index_bits) | i : keys[i]; };
    size_t count[(1u << kDigitBits) + 1] = {};
    for (size_t i = 0; i < n; ++i) ++count[digit(key(i)) + 1];
    for (size_t d = 1; d <= (1u << kDigitBits); ++d) count[d] += count[d - 1];
    if (pass + 1 == passes) {
      for (size_t i = 0; i < n; ++i) {
        uint64_t k = key(i);
        order[count[digit(k)]++] = {base + (k >> index_bits), static_cast<uint32_t>(k & index_mask)};
      }
    } else {
      uint64_t* to = pass == 0 ? keys.get() : scratch.get();
      for (size_t i = 0; i < n; ++i) to[count[digit(key(i))]++] = key(i);
      if (pass > 0) keys.swap(scratch);
    }
  }
  return order;
}

}  // namespace stackwatch::symbolizer
