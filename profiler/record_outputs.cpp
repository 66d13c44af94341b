// The interval report and the output files (see record_outputs.h).
#include "profiler/record_outputs.h"

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

void print_interval(std::FILE* out, const Interval& interval, unsigned top, double elapsed_s) {
  uint64_t on_samples = 0, off_events = 0, off_ns = 0;
  size_t on_stacks = 0, off_stacks = 0;
  for (const StackSample& s : interval.stacks) {
    if (s.kind == StackKind::kOnCpu) {
      on_samples += s.count;
      ++on_stacks;
    } else {
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
  std::fprintf(out, "\n");

  for (StackKind kind : {StackKind::kOnCpu, StackKind::kOffCpu}) {
    std::vector<const StackSample*> order;
    for (const StackSample& s : interval.stacks)
      if (s.kind == kind) order.push_back(&s);
    auto weight = [kind](const StackSample* s) { return kind == StackKind::kOnCpu ? s->count : s->off_ns; };
    std::sort(order.begin(), order.end(), [&](auto* a, auto* b) { return weight(a) > weight(b); });
    if (order.size() > top) order.resize(top);
    for (const StackSample* s : order) {
      size_t shown = 0;
      for (const Frame& f : s->frames) {
        if (shown++ == kMaxPrintedFrames) {
          std::fprintf(out, "    ... (%zu more frames)\n", s->frames.size() - kMaxPrintedFrames);
          break;
        }
        std::fprintf(out, "    %s%s\n", f.display_name().c_str(), f.inlined ? " (inlined)" : "");
      }
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

std::vector<std::string> write_outputs(const std::string& dir, const StackTotals& totals, const RecordInfo& info,
                                       bool final) {
  std::vector<std::string> written;
  std::vector<StackSample> stacks = totals.stacks();
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
  put("stacks.json", stacks_to_json(stacks, meta).dump(1) + "\n");
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
  if (final && !stacks.empty()) {
    flamegraph::PprofOptions p;
    if (info.hz) p.period = 1'000'000'000 / info.hz;
    p.duration_nanos = static_cast<int64_t>(info.elapsed_s * 1e9);
    flamegraph::write_pprof(dir + "/profile.pb.gz", stacks, p);
    written.push_back(dir + "/profile.pb.gz");
  }
  return written;
}

}  // namespace stackwatch::profiler
