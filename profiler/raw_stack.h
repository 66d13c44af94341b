// What the BPF side hands user space each interval, before symbolization:
// the aggregation key and value as BPF wrote them, plus the instruction
// pointers read from the stack map (innermost first).
#pragma once

#include <cstdint>
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
};

struct RawInterval {
  std::vector<RawStack> stacks;
  DropCounters drops;  // this interval's drops only
};

// Reads a per-CPU array of sw_drop_reason counters and returns the sum over
// CPUs; `previous` holds the last totals so the caller gets this interval's delta.
DropCounters read_drop_counters(int map_fd, DropCounters& previous);

// Copies every (key, value) from a counts hash and the referenced stacks from
// its stack map, then empties both. The maps must not be written meanwhile
// (they are the inactive buffer).
void drain_buffer(int counts_fd, int stacks_fd, StackKind kind, std::vector<RawStack>& out);

}  // namespace stackwatch::profiler
