// Draining BPF maps into RawStacks (see raw_stack.h).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <chrono>
#include <set>
#include <thread>
#include <unordered_map>

#include "profiler/raw_stack.h"

namespace stackwatch::profiler {

// How long a program that read the old buffer index may still be writing to
// it. Perf-event and scheduler programs run for microseconds with preemption
// off; 2 ms is a wide margin and costs nothing at a 5 s interval.
static constexpr auto kBufferFlipGrace = std::chrono::milliseconds(2);

void flip_and_drain(const DoubleBuffer& b, StackKind kind, std::vector<RawStack>& out) {
  uint32_t old = __atomic_load_n(b.active, __ATOMIC_SEQ_CST) & 1u;
  __atomic_store_n(b.active, old ^ 1u, __ATOMIC_SEQ_CST);
  std::this_thread::sleep_for(kBufferFlipGrace);
  drain_buffer(b.counts_fd[old], b.stacks_fd[old], kind, out, b.clear_stacks);
}

DropCounters read_drop_counters(int map_fd, DropCounters& previous) {
  int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0) return {};
  std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpus));
  uint64_t totals[SW_DROP_MAX] = {};
  for (uint32_t reason = 0; reason < SW_DROP_MAX; ++reason) {
    if (bpf_map_lookup_elem(map_fd, &reason, per_cpu.data()) != 0) continue;
    for (uint64_t v : per_cpu) totals[reason] += v;
  }
  DropCounters now;
  now.kernel_stack_errors = totals[SW_DROP_KERNEL_STACK];
  now.user_stack_errors = totals[SW_DROP_USER_STACK];
  now.stack_map_full = totals[SW_DROP_STACK_MAP_FULL];
  now.counts_map_full = totals[SW_DROP_COUNTS_FULL];
  now.other = totals[SW_DROP_EVENTS_FULL] + totals[SW_DROP_OTHER];
  now.copy_ring_full = totals[SW_DROP_COPY_FALLBACK];
  DropCounters delta;
  delta.kernel_stack_errors = now.kernel_stack_errors - previous.kernel_stack_errors;
  delta.user_stack_errors = now.user_stack_errors - previous.user_stack_errors;
  delta.stack_map_full = now.stack_map_full - previous.stack_map_full;
  delta.counts_map_full = now.counts_map_full - previous.counts_map_full;
  delta.other = now.other - previous.other;
  delta.copy_ring_full = now.copy_ring_full - previous.copy_ring_full;
  previous = now;
  return delta;
}

const std::vector<uint64_t>& StackMapReader::ips(int32_t id) {
  static const std::vector<uint64_t> kNone;
  if (id < 0) return kNone;
  auto it = cache_.find(id);
  if (it != cache_.end()) return it->second;
  uint64_t buf[SW_MAX_STACK_DEPTH] = {};
  std::vector<uint64_t> ips;
  if (bpf_map_lookup_elem(fd_, &id, buf) == 0)
    for (uint64_t ip : buf) {
      if (ip == 0) break;
      ips.push_back(ip);
    }
  return cache_.emplace(id, std::move(ips)).first->second;
}

std::vector<std::vector<uint8_t>> map_keys_bytes(int map_fd, size_t key_size, size_t max_keys) {
  std::vector<std::vector<uint8_t>> keys;
  std::set<std::vector<uint8_t>> seen;
  std::vector<uint8_t> key(key_size), next(key_size);
  bool first = true;
  for (size_t steps = 0; steps < 2 * max_keys && keys.size() < max_keys &&
                         bpf_map_get_next_key(map_fd, first ? nullptr : key.data(), next.data()) == 0;
       ++steps) {
    if (seen.insert(next).second) keys.push_back(next);
    key = next;
    first = false;
  }
  return keys;
}

void drain_buffer(int counts_fd, int stacks_fd, StackKind kind, std::vector<RawStack>& out, bool clear_stacks) {
  std::vector<sw_stack_key> keys;
  sw_stack_key key{}, next{};
  bool first = true;
  while (bpf_map_get_next_key(counts_fd, first ? nullptr : &key, &next) == 0) {
    keys.push_back(next);
    key = next;
    first = false;
  }
  StackMapReader stacks(stacks_fd);
  for (const sw_stack_key& k : keys) {
    RawStack raw;
    raw.key = k;
    raw.kind = kind;
    if (bpf_map_lookup_elem(counts_fd, &k, &raw.value) != 0) continue;
    raw.kernel_ips = stacks.ips(k.kernel_stack_id);
    raw.user_ips = stacks.ips(k.user_stack_id);
    out.push_back(std::move(raw));
  }
  for (const sw_stack_key& k : keys) bpf_map_delete_elem(counts_fd, &k);
  if (!clear_stacks) return;

  // Clear every stack, also ones no count refers to (their count insert
  // failed), so the map starts the next round empty.
  std::vector<uint32_t> ids;
  uint32_t id = 0, next_id = 0;
  first = true;
  while (bpf_map_get_next_key(stacks_fd, first ? nullptr : &id, &next_id) == 0) {
    ids.push_back(next_id);
    id = next_id;
    first = false;
  }
  for (uint32_t i : ids) bpf_map_delete_elem(stacks_fd, &i);
}

}  // namespace stackwatch::profiler
