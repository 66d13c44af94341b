// Calls counted with frame-pointer stacks for want of room in the copy ring
// go to the copied stacks they share their innermost frames with (see
// copy_fallback.h).
#include "profiler/copy_fallback.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>

namespace stackwatch::profiler {

namespace {

// Events that DWARF mode copies: I/O system calls (not block requests) and
// page faults.
bool is_call(const RawStack& s) {
  if (s.kind == StackKind::kMemory) return s.detail == "page-fault";
  return s.kind == StackKind::kIo && s.detail.rfind("block ", 0) != 0;
}

// Innermost frames a copy must share with a fallback: for a system call the
// site and its caller (every write() shares the site in libc; the caller is
// put back even without frame pointers); for a page fault the faulting
// instruction (the frame-pointer walk may find nothing above it).
size_t frames_needed(const RawStack& s) {
  return std::min<size_t>(s.kind == StackKind::kMemory ? 1 : 2, s.user_ips.size());
}

size_t common_prefix(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// Splits total over weights (summing to > 0) in proportion, exactly: floor
// shares, the remainder to the heaviest.
std::vector<uint64_t> split(uint64_t total, const std::vector<uint64_t>& weights, uint64_t weight_sum) {
  std::vector<uint64_t> out(weights.size());
  uint64_t given = 0;
  size_t heaviest = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    out[i] = static_cast<uint64_t>(static_cast<unsigned __int128>(total) * weights[i] / weight_sum);
    given += out[i];
    if (weights[i] > weights[heaviest]) heaviest = i;
  }
  out[heaviest] += total - given;
  return out;
}

}  // namespace

size_t attribute_copy_fallbacks(std::vector<RawStack>& stacks) {
  // The copied call stacks by (tgid, tid, detail).
  using Group = std::tuple<uint32_t, uint32_t, std::string>;
  std::map<Group, std::vector<size_t>> copies;
  for (size_t i = 0; i < stacks.size(); ++i)
    if (stacks[i].unwound && is_call(stacks[i]))
      copies[{stacks[i].key.tgid, stacks[i].key.tid, stacks[i].detail}].push_back(i);
  if (copies.empty()) return 0;

  // What each copy had before any fallback was given to it: the shares go
  // by the calls that were copied, not by what earlier fallbacks added.
  std::vector<uint64_t> copied_calls(stacks.size());
  for (size_t i = 0; i < stacks.size(); ++i) copied_calls[i] = stacks[i].value.count;

  std::vector<bool> merged(stacks.size(), false);
  size_t n_merged = 0;
  for (size_t i = 0; i < stacks.size(); ++i) {
    RawStack& f = stacks[i];
    if (f.unwound || !is_call(f) || f.user_ips.empty()) continue;
    auto it = copies.find({f.key.tgid, f.key.tid, f.detail});
    if (it == copies.end()) continue;
    // The copies sharing the most innermost frames with it (frames_needed at least).
    size_t need = frames_needed(f);
    size_t best = 0;
    std::vector<size_t> targets;
    for (size_t c : it->second) {
      size_t p = common_prefix(f.user_ips, stacks[c].user_ips);
      if (p < need || p < best) continue;
      if (p > best) targets.clear();
      best = p;
      targets.push_back(c);
    }
    if (targets.empty()) continue;
    std::vector<uint64_t> weights;
    uint64_t weight_sum = 0;
    for (size_t c : targets) {
      weights.push_back(copied_calls[c]);
      weight_sum += copied_calls[c];
    }
    if (weight_sum == 0) continue;
    std::vector<uint64_t> calls = split(f.value.count, weights, weight_sum);
    std::vector<uint64_t> bytes = split(f.bytes, weights, weight_sum);
    std::vector<uint64_t> ns = split(f.latency_ns, weights, weight_sum);
    for (size_t k = 0; k < targets.size(); ++k) {
      RawStack& to = stacks[targets[k]];
      to.value.count += calls[k];
      to.bytes += bytes[k];
      to.latency_ns += ns[k];
    }
    merged[i] = true;
    ++n_merged;
  }
  if (n_merged == 0) return 0;
  size_t w = 0;
  for (size_t i = 0; i < stacks.size(); ++i)
    if (!merged[i]) {
      if (w != i) stacks[w] = std::move(stacks[i]);
      ++w;
    }
  stacks.resize(w);
  return n_merged;
}

}  // namespace stackwatch::profiler
