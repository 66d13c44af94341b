// What the BPF side hands user space each interval, before symbolization:
// the aggregation key and value as BPF wrote them, plus the instruction
// pointers read from the stack map (innermost first).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "bpf/stackwatch.h"
#include "recording/recording.h"

namespace stackwatch::profiler {

static_assert(sizeof(sw_stack_key) == 36, "sw_stack_key must match bpf/stackwatch.h");
static_assert(sizeof(sw_stack_value) == 32, "sw_stack_value must match bpf/stackwatch.h");
static_assert(sizeof(sw_proc_event) == 32, "sw_proc_event must match bpf/stackwatch.h");

struct RawStack {
  sw_stack_key key{};
  sw_stack_value value{};
  StackKind kind = StackKind::kOnCpu;
  std::vector<uint64_t> kernel_ips;  // innermost first
  std::vector<uint64_t> user_ips;    // innermost first
  // Memory and I/O stacks only (see StackSample): copied as they are.
  uint64_t bytes = 0;
  uint64_t latency_ns = 0;
  std::string detail;
  bool unwound = false;  // DWARF mode: from a stack copy, unwound with CFI
};

// Entries for a BPF stack map that must hold about `stacks` distinct stacks
// (kernel and user ones count separately). bpf_get_stackid fails with
// -EEXIST when a different stack already sits in the hashed bucket, so the
// map needs a low load factor: 4 buckets per stack keeps collisions to a few
// percent. Capped because every entry is 1 KiB of kernel memory.
inline uint32_t stack_map_entries(uint32_t stacks) {
  uint64_t n = 4096;
  while (n < 4ull * stacks && n < 32768) n <<= 1;
  return static_cast<uint32_t>(n);
}

// Instruction pointers of the stacks of one BPF stack map, innermost first
// (empty for a negative id or one no longer in the map); cached, since many
// entries of one drain share a stack.
class StackMapReader {
 public:
  explicit StackMapReader(int stacks_fd) : fd_(stacks_fd) {}
  const std::vector<uint64_t>& ips(int32_t id);

 private:
  int fd_;
  std::unordered_map<int32_t, std::vector<uint64_t>> cache_;
};

// The keys of a BPF hash map, each once, at most `max_keys` of them. A map
// that BPF programs change meanwhile can send the walk back to its first key
// (the key it stands on was deleted): the walk stops after 2 x max_keys
// steps rather than going on for ever, and keys met again are skipped.
std::vector<std::vector<uint8_t>> map_keys_bytes(int map_fd, size_t key_size, size_t max_keys);
template <typename Key>
std::vector<Key> map_keys(int map_fd, size_t max_keys) {
  std::vector<Key> keys;
  for (const auto& bytes : map_keys_bytes(map_fd, sizeof(Key), max_keys)) {
    Key k{};
    std::memcpy(&k, bytes.data(), sizeof(Key));
    keys.push_back(k);
  }
  return keys;
}

struct RawInterval {
  std::vector<RawStack> stacks;
  DropCounters drops;  // this interval's drops only
};

// Reads a per-CPU array of sw_drop_reason counters and returns the sum over
// CPUs; `previous` holds the last totals so the caller gets this interval's delta.
DropCounters read_drop_counters(int map_fd, DropCounters& previous);

// Copies every (key, value) from a counts hash and the referenced stacks from
// its stack map, then empties the counts, and the stacks when clear_stacks.
// The counts must not be written meanwhile (they are the inactive buffer).
void drain_buffer(int counts_fd, int stacks_fd, StackKind kind, std::vector<RawStack>& out, bool clear_stacks);

// A BPF program's double-buffered counts/stacks pair: flips the active index
// (in the program's mmapped .bss), waits for programs still writing to the
// old pair, then drains it.
struct DoubleBuffer {
  volatile uint32_t* active;  // the program's `active_buffer`
  int counts_fd[2];
  int stacks_fd[2];           // the same fd twice when stacks are not double-buffered
  bool clear_stacks = true;   // false: stack ids stay valid across intervals
};
void flip_and_drain(const DoubleBuffer& buffers, StackKind kind, std::vector<RawStack>& out);

}  // namespace stackwatch::profiler
