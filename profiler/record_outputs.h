// What record prints and writes: the per-interval report in the manner of
// BCC's stackcount, and the output files (stacks.json, oncpu.folded,
// offcpu.folded, wall.folded), each rewritten atomically every interval.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "profiler/stack_totals.h"
#include "recording/recording.h"

namespace stackwatch::profiler {

struct RecordInfo {
  std::string started_at;  // ISO 8601
  double elapsed_s = 0;
  uint64_t intervals = 0;
  unsigned hz = 0;
  std::string event_name;
  std::string targets;  // "every process", "pid 1234", "'./server' and its children"
  bool on_cpu = true;
  bool off_cpu = true;
  bool memory = false;  // memory.folded, faults.folded (+ .svg)
  bool io = false;      // io.folded, blockio.folded (+ .svg)
  uint64_t stale_thread_entries = 0;
  nlohmann::json extra = nlohmann::json::object();  // merged into stacks.json's "_stackwatch"
};

// Prints the interval header and its top `top` stacks (innermost frame first,
// then "-  comm (pid)" and the count, as stackcount printed them).
void print_interval(std::FILE* out, const Interval& interval, unsigned top, double elapsed_s);

// Prints the interval's memory and I/O stacks (record --memory / --io), the
// top `top` of each view: outstanding bytes, bad operations, page faults, I/O
// bytes, block I/O latency.
void print_resources(std::FILE* out, const std::vector<StackSample>& stacks, unsigned top);

// "1.5 MiB", "812 B".
std::string format_bytes(uint64_t bytes);

// Rewrites every output file from the totals and the current outstanding
// memory (`memory_levels`: a level, replaced every interval, not summed);
// returns the paths written.
// The flame graphs (oncpu.svg, offcpu.svg, wall.svg) and the pprof profile
// (profile.pb.gz) are drawn only when `final`: rendering every interval
// would cost more than the sampling itself.
std::vector<std::string> write_outputs(const std::string& dir, const StackTotals& totals, const RecordInfo& info,
                                       bool final, const std::vector<StackSample>& memory_levels = {});

std::string iso8601_now();

// Gives the free pages of the heap back to the kernel (malloc_trim). Each
// interval allocates and frees megabytes (raw stacks, resolved frames, the
// folded views); glibc keeps what was freed below the top of the heap, so
// without this the RSS climbs to the largest interval seen and, with the
// holes that long-lived allocations leave, beyond it. Call once an
// interval, after the outputs are written.
void release_free_heap();

}  // namespace stackwatch::profiler
