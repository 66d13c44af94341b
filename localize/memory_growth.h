// Memory growth: watches the outstanding bytes of each process that `record
// --memory` reports every interval (a level per allocating stack) and flags a
// process whose memory keeps rising: every step of the last `window`
// intervals went up (one flat step is tolerated) and the rise is large, both
// absolutely and relative to where it started. It then names the allocating
// stack that explains most of the rise, and in it the innermost function that
// is not the allocator itself (the caller of malloc, not malloc), with a
// plain-language hint.
//
// What it does not do: see growth inside a custom allocator's arenas (the
// page-fault view shows that), or decide that growth is a bug: a cache that
// fills up looks the same for a while, and the hint says so.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "localize/interval_monitor.h"
#include "recording/recording.h"

namespace stackwatch::localize {

struct MemoryGrowthConfig {
  size_t window = 4;                     // intervals of rise before flagging
  uint64_t min_growth_bytes = 1u << 20;  // and at least this much
  double min_relative_growth = 0.05;     // and this fraction of the starting level
};

// One flagged growth, with its suspect.
struct MemoryGrowth {
  Anomaly anomaly;  // kind "memory_growth"; top: the stacks' shares of the rise
  uint32_t tgid = 0;
  std::string process;
  uint64_t bytes_before = 0;  // outstanding at the start of the window
  uint64_t bytes_now = 0;
  double seconds = 0;  // length of the window
  std::string suspect;            // the function; "" when no stack explains it
  std::vector<std::string> path;  // the suspect's stack, outermost first, ending at the suspect
  uint64_t suspect_bytes = 0;     // outstanding from the suspect's stack now
  uint64_t suspect_allocations = 0;
  double suspect_share = 0;  // of the process's rise
  std::string hint;          // one sentence

  nlohmann::json to_json() const;
};

class MemoryGrowthDetector {
 public:
  explicit MemoryGrowthDetector(MemoryGrowthConfig config = {}) : config_(config) {}

  // `levels`: the interval's outstanding-memory stacks (kMemory, detail "").
  // Returns the processes flagged in this interval; a process is flagged
  // again only after its memory came down from its peak since the flag by
  // as much as a flag needs to go up (a dip of balanced frees is not it).
  std::vector<MemoryGrowth> observe(uint64_t interval_index, int64_t start_unix_ns, int64_t end_unix_ns,
                                    const std::vector<StackSample>& levels);

 private:
  struct Point {
    int64_t end_unix_ns = 0;
    uint64_t total = 0;
    std::map<std::string, const StackSample*> stacks;  // by identity, into `kept`
    std::vector<StackSample> kept;
  };
  struct Process {
    std::deque<Point> points;  // the last window + 1 intervals
    bool flagged = false;
    uint64_t peak = 0;  // highest total since the flag
    uint64_t last_seen = 0;
  };
  MemoryGrowth explain(uint32_t tgid, const Process& p, uint64_t index, int64_t start_unix_ns,
                       int64_t end_unix_ns) const;

  MemoryGrowthConfig config_;
  std::map<uint32_t, Process> processes_;
};

// Whether a frame is the allocator itself (libc's malloc family, C++
// operator new, mmap), which the suspect skips to reach its caller.
bool is_allocator_frame(const Frame& frame);

}  // namespace stackwatch::localize
