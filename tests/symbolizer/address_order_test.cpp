// The lookup order of a batch: ascending address, equal addresses in input
// order, for packed keys (radix sort) and for addresses too far apart to pack.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "symbolizer/address_buckets.h"
#include "symbolizer/address_order.h"

namespace stackwatch::symbolizer {
namespace {

std::vector<OrderedAddress> expected_order(const std::vector<uint64_t>& addresses) {
  std::vector<uint32_t> order(addresses.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return addresses[a] < addresses[b]; });
  std::vector<OrderedAddress> out;
  for (uint32_t i : order) out.push_back({addresses[i], i});
  return out;
}

TEST(AddressOrder, AscendingWithTiesInInputOrder) {
  std::mt19937_64 rng(7);
  std::vector<uint64_t> addresses;
  for (int i = 0; i < 50000; ++i) addresses.push_back(0x7f0000400000 + rng() % 0x300000);
  for (int i = 0; i < 1000; ++i) addresses.push_back(addresses[rng() % addresses.size()]);  // repeats
  EXPECT_EQ(address_order(addresses), expected_order(addresses));
}

// Spread over 40 bits: four radix passes, through both scratch buffers.
TEST(AddressOrder, WideSpanTakesSeveralPasses) {
  std::mt19937_64 rng(11);
  std::vector<uint64_t> addresses;
  for (int i = 0; i < 20000; ++i) addresses.push_back(0x10000 + rng() % (uint64_t{1} << 40));
  for (int i = 0; i < 500; ++i) addresses.push_back(addresses[rng() % addresses.size()]);
  EXPECT_EQ(address_order(addresses), expected_order(addresses));
}

TEST(AddressOrder, AddressesTooFarApartToPack) {
  std::vector<uint64_t> addresses = {UINT64_MAX, 0, 0xffffffff81000000, 5, 0, UINT64_MAX - 1};
  std::vector<OrderedAddress> expected = {{0, 1}, {0, 4}, {5, 3}, {0xffffffff81000000, 2}, {UINT64_MAX - 1, 5},
                                         {UINT64_MAX, 0}};
  EXPECT_EQ(address_order(addresses), expected);
}

TEST(AddressOrder, EmptyAndSingle) {
  EXPECT_TRUE(address_order({}).empty());
  std::vector<uint64_t> one = {42};
  EXPECT_EQ(address_order(one), (std::vector<OrderedAddress>{{42, 0}}));
}

// A bucket's window holds the upper bound of every address in the bucket:
// elements before it are below the address, elements from its end above.
TEST(AddressBuckets, WindowsHoldTheUpperBound) {
  std::mt19937_64 rng(3);
  for (int round = 0; round < 20; ++round) {
    std::vector<uint64_t> keys;
    uint64_t at = 0x400000 + rng() % 4096;
    size_t count = 1 + rng() % 3000;
    for (size_t i = 0; i < count; ++i) {
      keys.push_back(at);
      at += rng() % 4 == 0 ? 0 : rng() % (round % 2 == 0 ? 16 : 4096);  // repeats, dense and sparse
    }
    AddressBuckets buckets;
    buckets.build(keys.size(), [&](size_t k) { return keys[k]; });
    for (int probe = 0; probe < 2000; ++probe) {
      uint64_t address = keys.front() - 64 + rng() % (keys.back() - keys.front() + 128);
      auto [lo, hi] = buckets.window(address);
      size_t upper = static_cast<size_t>(std::upper_bound(keys.begin(), keys.end(), address) - keys.begin());
      ASSERT_LE(lo, hi);
      if (address < keys.front()) continue;  // below every element: {0, 0}
      ASSERT_LE(lo, upper) << "round " << round << ", address " << address;
      ASSERT_GE(hi, upper) << "round " << round << ", address " << address;
    }
  }
}

}  // namespace
}  // namespace stackwatch::symbolizer
