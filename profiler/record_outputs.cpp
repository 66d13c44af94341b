// The interval report and the output files (see record_outputs.h).
#include "profiler/record_outputs.h"

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "flamegraph/flamegraph.h"
#include "recording/atomic_file.h"
#include "recording/stacks_json.h"

namespace stackwatch::profiler {

// Frames printed per stack in the interval report; the files keep them all.
static constexpr size_t kMaxPrintedFrames = 16;

std::string iso8601_now() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// malloc_trim(0) also releases the whole free pages inside the heap
// (madvise), not only its top: that is what keeps a fragmented heap's RSS
// down to what is in use.
void release_free_heap() { malloc_trim(0); }

// A stack's frames, innermost first, at most kMaxPrintedFrames of them.
static void print_frames(std::FILE* out, const StackSample& s) {
  size_t shown = 0;
  for (const Frame& f : s.frames) {
    if (shown++ == kMaxPrintedFrames) {
      std::fprintf(out, "    ... (%zu more frames)\n", s.frames.size() - kMaxPrintedFrames);
      break;
    }
    std::fprintf(out, "    %s%s\n", f.display_name().c_str(), f.inlined ? " (inlined)" : "");
  }
}

void print_interval(std::FILE* out, const Interval& interval, unsigned top, double elapsed_s) {
  uint64_t on_samples = 0, off_events = 0, off_ns = 0;
  size_t on_stacks = 0, off_stacks = 0;
  for (const StackSample& s : interval.stacks) {
    if (s.kind == StackKind::kOnCpu) {
      on_samples += s.count;
      ++on_stacks;
    } else if (s.kind == StackKind::kOffCpu) {
      off_events += s.count;
      off_ns += s.off_ns;
      ++off_stacks;
    }
  }
  std::fprintf(out, "\n[%8.1fs] interval %llu: on-CPU %llu samples in %zu stacks", elapsed_s,
               static_cast<unsigned long long>(interval.index), static_cast<unsigned long long>(on_samples),
               on_stacks);
  if (off_stacks)
    std::fprintf(out, "; off-CPU %.1f ms in %llu blocks, %zu stacks", static_cast<double>(off_ns) / 1e6,
                 static_cast<unsigned long long>(off_events), off_stacks);
  const DropCounters& d = interval.drops;
  std::fprintf(out, "; dropped %llu", static_cast<unsigned long long>(d.total()));
  if (d.total())
    std::fprintf(out, " (samples lost: counts map full %llu, ring buffer full %llu; stacks missing: kernel walk %llu, "
                 "user walk %llu, stack map full %llu)",
                 static_cast<unsigned long long>(d.counts_map_full), static_cast<unsigned long long>(d.other),
                 static_cast<unsigned long long>(d.kernel_stack_errors),
                 static_cast<unsigned long long>(d.user_stack_errors),
                 static_cast<unsigned long long>(d.stack_map_full));
  if (d.copy_ring_full)
    std::fprintf(out, "; %llu events found the stack-copy ring full (kept, with frame-pointer stacks)",
                 static_cast<unsigned long long>(d.copy_ring_full));
  std::fprintf(out, "\n");

  for (StackKind kind : {StackKind::kOnCpu, StackKind::kOffCpu}) {
    std::vector<const StackSample*> order;
    for (const StackSample& s : interval.stacks)
      if (s.kind == kind) order.push_back(&s);
    auto weight = [kind](const StackSample* s) { return kind == StackKind::kOnCpu ? s->count : s->off_ns; };
    std::sort(order.begin(), order.end(), [&](auto* a, auto* b) { return weight(a) > weight(b); });
    if (order.size() > top) order.resize(top);
    for (const StackSample* s : order) {
      print_frames(out, *s);
      std::fprintf(out, "    -                %s (%u/%u)\n", s->thread_name.c_str(), s->tgid, s->tid);
      if (kind == StackKind::kOnCpu)
        std::fprintf(out, "        %llu\n\n", static_cast<unsigned long long>(s->count));
      else
        std::fprintf(out, "        %.3f ms off-CPU (%s) in %llu blocks\n\n", static_cast<double>(s->off_ns) / 1e6,
                     to_string(s->off_state), static_cast<unsigned long long>(s->count));
    }
  }
  std::fflush(out);
}

std::string format_bytes(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ull << 30))
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1ull << 30));
  else if (bytes >= (1ull << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1ull << 20));
  else if (bytes >= 1024)
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
  else
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  return buf;
}

void print_resources(std::FILE* out, const std::vector<StackSample>& stacks, unsigned top) {
  struct View {
    const char* title;
    bool (*member)(const StackSample&);
    uint64_t (*weight)(const StackSample&);
    const char* unit;  // "bytes" or "count"
  };
  static const View kViews[] = {
      {"memory still allocated", [](const StackSample& s) { return s.kind == StackKind::kMemory && s.detail.empty(); },
       [](const StackSample& s) { return s.bytes; }, "bytes"},
      {"bad memory operations",
       [](const StackSample& s) {
         return s.kind == StackKind::kMemory && !s.detail.empty() && s.detail != kPageFaultDetail;
       },
       [](const StackSample& s) { return s.count; }, "count"},
      {"user page faults",
       [](const StackSample& s) { return s.kind == StackKind::kMemory && s.detail == kPageFaultDetail; },
       [](const StackSample& s) { return s.count; }, "count"},
      {"I/O system calls", [](const StackSample& s) { return s.kind == StackKind::kIo && !is_block_io(s); },
       [](const StackSample& s) { return s.bytes; }, "bytes"},
      {"block I/O", [](const StackSample& s) { return is_block_io(s); },
       [](const StackSample& s) { return s.latency_ns; }, "latency"},
  };
  for (const View& v : kViews) {
    std::vector<const StackSample*> order;
    uint64_t total = 0, calls = 0;
    for (const StackSample& s : stacks)
      if (v.member(s)) {
        order.push_back(&s);
        total += v.weight(s);
        calls += s.count;
      }
    if (order.empty()) continue;
    std::string amount = std::string(v.unit) == "bytes"     ? format_bytes(total) + " in " + std::to_string(calls) +
                                                                  (v.title[0] == 'm' ? " allocations" : " calls")
                         : std::string(v.unit) == "latency" ? std::to_string(calls) + " requests"
                                                            : std::to_string(total);
    std::fprintf(out, "  %s: %s, %zu stacks\n", v.title, amount.c_str(), order.size());
    std::sort(order.begin(), order.end(), [&](auto* a, auto* b) { return v.weight(*a) > v.weight(*b); });
    if (order.size() > top) order.resize(top);
    for (const StackSample* s : order) {
      print_frames(out, *s);
      std::fprintf(out, "    -                %s (%u/%u)%s%s\n", s->thread_name.c_str(), s->tgid, s->tid,
                   s->detail.empty() ? "" : " ", s->detail.c_str());
      if (std::string(v.unit) == "bytes")
        std::fprintf(out, "        %s in %llu %s\n\n", format_bytes(s->bytes).c_str(),
                     static_cast<unsigned long long>(s->count), s->kind == StackKind::kMemory ? "allocations" : "calls");
      else if (std::string(v.unit) == "latency")
        std::fprintf(out, "        %s in %llu requests, %.3f ms total latency\n\n", format_bytes(s->bytes).c_str(),
                     static_cast<unsigned long long>(s->count), static_cast<double>(s->latency_ns) / 1e6);
      else
        std::fprintf(out, "        %llu\n\n", static_cast<unsigned long long>(s->count));
    }
  }
  std::fflush(out);
}

namespace {

// The totals, then the outstanding memory (a level, kept apart from them).
class TotalsAndLevels : public StackSource {
 public:
  TotalsAndLevels(const StackSource& totals, const std::vector<StackSample>& levels)
      : totals_(totals), levels_(levels) {}
  size_t size() const override { return totals_.size() + levels_.size(); }
  const StackSample& header(size_t i) const override {
    return i < totals_.size() ? totals_.header(i) : levels_[i - totals_.size()];
  }
  const StackSample& get(size_t i, StackSample& scratch) const override {
    return i < totals_.size() ? totals_.get(i, scratch) : levels_[i - totals_.size()];
  }

 private:
  const StackSource& totals_;
  const std::vector<StackSample>& levels_;
};

// The on- and off-CPU stacks of another source.
class CpuStacks : public StackSource {
 public:
  explicit CpuStacks(const StackSource& all) : all_(all) {
    for (size_t i = 0; i < all.size(); ++i) {
      StackKind kind = all.header(i).kind;
      if (kind == StackKind::kOnCpu || kind == StackKind::kOffCpu) picked_.push_back(i);
    }
  }
  size_t size() const override { return picked_.size(); }
  const StackSample& header(size_t i) const override { return all_.header(picked_[i]); }
  const StackSample& get(size_t i, StackSample& scratch) const override { return all_.get(picked_[i], scratch); }

 private:
  const StackSource& all_;
  std::vector<size_t> picked_;
};

}  // namespace

std::vector<std::string> write_outputs(const std::string& dir, const StackTotals& totals, const RecordInfo& info,
                                       bool final, const std::vector<StackSample>& memory_levels) {
  std::vector<std::string> written;
  // The totals' own stacks, each built when written: a churning machine's
  // are tens of megabytes, not to be copied every interval.
  StackTotals::Ordered ordered = totals.ordered();
  TotalsAndLevels stacks(ordered, memory_levels);
  StacksFileMeta meta;
  meta.started_at = info.started_at;
  meta.duration_s = info.elapsed_s;
  meta.intervals = info.intervals;
  meta.sample_hz = info.hz;
  meta.sampling_event = info.event_name;
  meta.drops = totals.drops;
  meta.stale_thread_entries = info.stale_thread_entries;
  meta.extra = info.extra;
  auto put = [&](const std::string& name, const std::string& text) {
    write_file_atomically(dir + "/" + name, text);
    written.push_back(dir + "/" + name);
  };
  write_stacks_json(dir + "/stacks.json", stacks, meta);
  written.push_back(dir + "/stacks.json");
  char when[96];
  std::snprintf(when, sizeof when, "%s, %.1f s", info.started_at.c_str(), info.elapsed_s);
  auto graph = [&](const std::string& name, const std::vector<flamegraph::FoldedStack>& folded, const char* title,
                   const std::string& what, const char* units, flamegraph::Palette palette) {
    if (!final) return;
    flamegraph::SvgOptions o;
    o.title = title;
    o.subtitle = what + ", " + info.targets + ", " + when;
    o.units = units;
    o.palette = palette;
    put(name, flamegraph::render_svg(folded, o));
  };
  if (info.on_cpu) {
    auto folded = to_folded(stacks, FoldedWeight::kSamples);
    put("oncpu.folded", flamegraph::folded_to_string(folded));
    graph("oncpu.svg", folded, "On-CPU", "samples at " + std::to_string(info.hz) + " Hz (" + info.event_name + ")",
          "samples", flamegraph::Palette::kHot);
  }
  if (info.off_cpu) {
    auto folded = to_folded(stacks, FoldedWeight::kOffCpuMicros);
    put("offcpu.folded", flamegraph::folded_to_string(folded));
    graph("offcpu.svg", folded, "Off-CPU", "time blocked", "us", flamegraph::Palette::kCool);
    if (info.on_cpu && info.hz > 0) {
      auto wall = to_folded(stacks, FoldedWeight::kWallMicros, 1e6 / info.hz);
      put("wall.folded", flamegraph::folded_to_string(wall));
      graph("wall.svg", wall, "Wall clock", "on-CPU samples as time, plus time blocked", "us",
            flamegraph::Palette::kHot);
    }
  }
  if (info.memory) {
    auto folded = to_folded(stacks, FoldedWeight::kMemoryBytes);
    put("memory.folded", flamegraph::folded_to_string(folded));
    graph("memory.svg", folded, "Memory still allocated", "bytes outstanding per allocating stack", "bytes",
          flamegraph::Palette::kMem);
    auto faults = to_folded(stacks, FoldedWeight::kPageFaults);
    put("faults.folded", flamegraph::folded_to_string(faults));
    graph("faults.svg", faults, "User page faults", "page faults per stack", "faults", flamegraph::Palette::kMem);
  }
  if (info.io) {
    auto folded = to_folded(stacks, FoldedWeight::kIoBytes);
    put("io.folded", flamegraph::folded_to_string(folded));
    graph("io.svg", folded, "I/O", "bytes read and written per stack", "bytes", flamegraph::Palette::kIo);
    auto block = to_folded(stacks, FoldedWeight::kBlockIoMicros);
    put("blockio.folded", flamegraph::folded_to_string(block));
    graph("blockio.svg", block, "Block I/O", "request latency per issuing stack", "us", flamegraph::Palette::kIo);
  }
  // pprof holds the CPU views (samples and blocked time) only.
  if (final) {
    // Built one at a time, as stacks.json's are (copied out whole, a
    // churning machine's stacks were 11 MB of the recording's peak heap).
    CpuStacks cpu(stacks);
    if (cpu.size() > 0) {
      flamegraph::PprofOptions p;
      if (info.hz) p.period = 1'000'000'000 / info.hz;
      p.duration_nanos = static_cast<int64_t>(info.elapsed_s * 1e9);
      flamegraph::write_pprof(dir + "/profile.pb.gz", cpu, p);
      written.push_back(dir + "/profile.pb.gz");
    }
  }
  return written;
}

}  // namespace stackwatch::profiler
