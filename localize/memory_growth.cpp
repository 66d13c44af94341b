// Memory growth detection and its suspect (see memory_growth.h).
#include "localize/memory_growth.h"

#include <algorithm>
#include <cstdio>
#include <set>

namespace stackwatch::localize {

namespace {

// A stack's identity across intervals: thread-independent, since a block
// is outstanding for the process whichever thread allocated it.
std::string identity(const StackSample& s) {
  std::string id;
  for (const Frame& f : s.frames) {
    id += f.function.empty() ? f.module + "+" + std::to_string(f.module_offset) : f.function;
    id += '|';
  }
  return id;
}

std::string mib(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1u << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1u << 20));
  else
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
  return buf;
}

bool in_libc(const std::string& module) {
  std::string base = module.substr(module.rfind('/') + 1);
  return base.rfind("libc.so", 0) == 0 || base.rfind("libc-", 0) == 0 || base.rfind("ld-linux", 0) == 0;
}

}  // namespace

bool is_allocator_frame(const Frame& f) {
  static const std::set<std::string> kNames = {
      "malloc", "calloc", "realloc", "reallocarray", "free", "posix_memalign", "aligned_alloc", "memalign",
      "valloc", "pvalloc", "mmap", "mmap64", "munmap", "__libc_malloc", "__libc_calloc", "__libc_realloc",
      "__libc_memalign", "__posix_memalign", "_int_malloc", "_int_realloc", "operator new(unsigned long)",
      "operator new[](unsigned long)", "operator new(unsigned long, std::align_val_t)", "strdup", "strndup"};
  if (f.kernel) return true;
  if (kNames.count(f.function)) return true;
  if (f.function.rfind("operator new", 0) == 0) return true;
  return in_libc(f.module);
}

nlohmann::json MemoryGrowth::to_json() const {
  nlohmann::json j = anomaly_to_json(anomaly);
  j["process"] = process;
  j["pid"] = tgid;
  j["bytes_before"] = bytes_before;
  j["bytes_now"] = bytes_now;
  j["seconds"] = seconds;
  j["suspect"] = suspect;
  j["path"] = path;
  j["suspect_bytes"] = suspect_bytes;
  j["suspect_allocations"] = suspect_allocations;
  j["suspect_share"] = suspect_share;
  j["category"] = "memory";
  j["hint"] = hint;
  return j;
}

std::vector<MemoryGrowth> MemoryGrowthDetector::observe(uint64_t index, int64_t start_unix_ns, int64_t end_unix_ns,
                                                        const std::vector<StackSample>& levels) {
  std::map<uint32_t, Point> now;
  for (const StackSample& s : levels) {
    if (s.kind != StackKind::kMemory || !s.detail.empty()) continue;
    Point& p = now[s.tgid];
    p.end_unix_ns = end_unix_ns;
    p.total += s.bytes;
    p.kept.push_back(s);
  }
  // A process with nothing outstanding this interval is a point at zero.
  for (auto& [tgid, proc] : processes_)
    if (!now.count(tgid)) now[tgid].end_unix_ns = end_unix_ns;

  std::vector<MemoryGrowth> found;
  for (auto& [tgid, point] : now) {
    // Merge the per-thread entries of one allocating stack.
    std::vector<StackSample> merged;
    std::map<std::string, size_t> at;
    for (StackSample& s : point.kept) {
      std::string id = identity(s);
      auto [it, fresh] = at.emplace(id, merged.size());
      if (fresh) {
        merged.push_back(std::move(s));
      } else {
        merged[it->second].bytes += s.bytes;
        merged[it->second].count += s.count;
      }
    }
    point.kept = std::move(merged);

    Process& proc = processes_[tgid];
    proc.last_seen = index;
    proc.points.push_back(std::move(point));
    // Index the stacks where they now live.
    Point& back = proc.points.back();
    back.stacks.clear();
    for (const StackSample& s : back.kept) back.stacks[identity(s)] = &s;
    while (proc.points.size() > config_.window + 1) proc.points.pop_front();

    size_t n = proc.points.size();
    // Re-armed once the memory has really come down from its peak since the
    // flag, not on the small dips that frees of balanced code make.
    if (proc.flagged) {
      uint64_t now = proc.points.back().total;
      proc.peak = std::max(proc.peak, now);
      uint64_t fall = std::max<uint64_t>(config_.min_growth_bytes,
                                         static_cast<uint64_t>(config_.min_relative_growth * static_cast<double>(proc.peak)));
      if (now + fall <= proc.peak) proc.flagged = false;
    }
    if (proc.flagged || n < config_.window + 1) continue;
    uint64_t first = proc.points.front().total, last = proc.points.back().total;
    if (last <= first) continue;
    uint64_t growth = last - first;
    // Mostly rising steps; a fall is tolerated when it is small next to the
    // rise of a step (frees of balanced code between two snapshots), not
    // when it undoes one.
    double step = static_cast<double>(growth) / static_cast<double>(n - 1);
    size_t rises = 0, big_falls = 0;
    for (size_t i = 1; i < n; ++i) {
      uint64_t a = proc.points[i - 1].total, b = proc.points[i].total;
      if (b > a) ++rises;
      else if (static_cast<double>(a - b) > 0.5 * step) ++big_falls;
    }
    if (big_falls > 0 || rises + 1 < config_.window) continue;
    if (growth < config_.min_growth_bytes || static_cast<double>(growth) < config_.min_relative_growth * first) continue;
    proc.flagged = true;
    proc.peak = last;
    found.push_back(explain(tgid, proc, index, start_unix_ns, end_unix_ns));
  }
  // Forget processes gone for a long time.
  std::erase_if(processes_, [&](const auto& kv) { return kv.second.last_seen + 4 * config_.window < index; });
  return found;
}

MemoryGrowth MemoryGrowthDetector::explain(uint32_t tgid, const Process& p, uint64_t index, int64_t start_unix_ns,
                                           int64_t end_unix_ns) const {
  const Point& before = p.points.front();
  const Point& after = p.points.back();
  MemoryGrowth g;
  g.tgid = tgid;
  g.bytes_before = before.total;
  g.bytes_now = after.total;
  g.seconds = static_cast<double>(after.end_unix_ns - before.end_unix_ns) / 1e9;
  uint64_t growth = after.total - before.total;

  struct Rise {
    const StackSample* stack;
    int64_t bytes;
  };
  std::vector<Rise> rises;
  for (const auto& [id, s] : after.stacks) {
    auto b = before.stacks.find(id);
    int64_t was = b == before.stacks.end() ? 0 : static_cast<int64_t>(b->second->bytes);
    rises.push_back({s, static_cast<int64_t>(s->bytes) - was});
  }
  std::sort(rises.begin(), rises.end(), [](const Rise& a, const Rise& b) { return a.bytes > b.bytes; });

  Anomaly& a = g.anomaly;
  a.interval_index = index;
  a.start_unix_ns = start_unix_ns;
  a.end_unix_ns = end_unix_ns;
  a.kind = "memory_growth";
  a.score = static_cast<double>(growth);
  a.threshold = static_cast<double>(config_.min_growth_bytes);
  for (const Rise& r : rises) {
    if (r.bytes <= 0 || a.top.size() == 5) break;
    std::string name;
    for (const Frame& f : r.stack->frames)
      if (!is_allocator_frame(f)) {
        name = f.display_name();
        break;
      }
    a.top.push_back({"memory stack " + (name.empty() ? std::string("?") : name),
                     static_cast<double>(r.bytes) / static_cast<double>(growth)});
  }
  if (!rises.empty() && rises.front().bytes > 0) {
    const StackSample& s = *rises.front().stack;
    g.process = s.process_name;
    size_t suspect = s.frames.size();
    for (size_t i = 0; i < s.frames.size(); ++i)
      if (!is_allocator_frame(s.frames[i])) {
        suspect = i;
        break;
      }
    if (suspect < s.frames.size()) {
      g.suspect = s.frames[suspect].display_name();
      for (size_t i = s.frames.size(); i-- > suspect;) g.path.push_back(s.frames[i].display_name());
    }
    g.suspect_bytes = s.bytes;
    g.suspect_allocations = s.count;
    g.suspect_share = static_cast<double>(rises.front().bytes) / static_cast<double>(growth);
  }
  char rate[64];
  std::snprintf(rate, sizeof rate, "%.1f", g.seconds > 0 ? static_cast<double>(growth) / (1u << 20) / g.seconds : 0.0);
  std::string who = g.process.empty() ? "pid " + std::to_string(tgid) : g.process + " (pid " + std::to_string(tgid) + ")";
  a.description = "memory_growth: " + who + " holds " + mib(g.bytes_now) + " allocated, up " + mib(growth) +
                  " in " + std::to_string(static_cast<int>(g.seconds + 0.5)) + " s (" + rate + " MiB/s)";
  if (g.suspect.empty()) {
    g.hint = a.description + "; no single allocating stack explains it";
  } else {
    char share[16];
    std::snprintf(share, sizeof share, "%.0f%%", g.suspect_share * 100);
    std::string via;
    if (g.path.size() >= 2) via = " (called from " + g.path[g.path.size() - 2] + ")";
    g.hint = g.suspect + via + ": " + mib(g.suspect_bytes) + " still allocated from " +
             std::to_string(g.suspect_allocations) + " allocations, " + share + " of " + who + "'s rise of " +
             mib(growth) + " in " + std::to_string(static_cast<int>(g.seconds + 0.5)) + " s, " + rate +
             " MiB/s and not freed: memory growth (a leak, or a cache without a bound)";
  }
  return g;
}

}  // namespace stackwatch::localize
