// Turns drained RawStacks into StackSamples with frames: kernel addresses
// through kallsyms, user addresses through the symbolizer with the mappings
// snapshotted when the process was first seen. Addresses are looked up once
// per interval (a bounded per-interval cache), not once per sample.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "profiler/raw_stack.h"
#include "recording/recording.h"
#include "symbolizer/symbolizer.h"

namespace stackwatch::profiler {

class ProcessTracker;

class StackResolver {
 public:
  StackResolver(symbolizer::Symbolizer& symbolizer, const ProcessTracker& tracker)
      : symbolizer_(symbolizer), tracker_(tracker) {}

  std::vector<StackSample> resolve(const std::vector<RawStack>& raw);

 private:
  struct UserKey {
    uint32_t tgid;
    uint64_t address;
    bool operator==(const UserKey&) const = default;
  };
  struct UserKeyHash {
    size_t operator()(const UserKey& k) const { return std::hash<uint64_t>()(k.address * 31 + k.tgid); }
  };

  const std::vector<Frame>& kernel_frames(uint64_t address);
  const std::vector<Frame>& user_frames(uint32_t tgid, uint64_t address, bool is_return_address);

  symbolizer::Symbolizer& symbolizer_;
  const ProcessTracker& tracker_;
  std::unordered_map<uint64_t, std::vector<Frame>> kernel_cache_;
  std::unordered_map<UserKey, std::vector<Frame>, UserKeyHash> user_cache_;
};

}  // namespace stackwatch::profiler
