// The record run loop (see record_session.h).
#include "profiler/record_session.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <map>
#include <optional>

#include "profiler/bpf_handles.h"
#include "profiler/cgroup_members.h"
#include "profiler/command_launcher.h"
#include "profiler/load_monitor.h"
#include "profiler/load_series_writer.h"
#include "profiler/load_summary.h"
#include "profiler/load_threshold.h"
#include "profiler/live_localizer.h"
#include "localize/interval_log.h"
#include "localize/interval_monitor.h"
#include "localize/json_lines.h"
#include "profiler/process_series_writer.h"
#include "profiler/offcpu_sampler.h"
#include "profiler/copy_fallback.h"
#include "profiler/io_sampler.h"
#include "profiler/memory_sampler.h"
#include "localize/memory_growth.h"
#include "profiler/perf_events.h"
#include "profiler/oncpu_sampler.h"
#include "profiler/process_tracker.h"
#include "profiler/record_outputs.h"
#include "profiler/stack_copies.h"
#include "profiler/stack_resolver.h"
#include "profiler/stack_totals.h"
#include "recording/atomic_file.h"
#include "recording/error.h"
#include "symbolizer/symbolizer.h"

namespace stackwatch::profiler {

using Clock = std::chrono::steady_clock;

// How often the loop wakes up when nothing happens, to notice exited -p
// targets and the -d deadline without waiting for a full interval.
static constexpr int kMaxPollMs = 100;

namespace {

// Blocks the stop signals and reads them from a signalfd, so a signal never
// interrupts a half-written output: it is handled between two steps.
class StopSignals {
 public:
  StopSignals() {
    sigemptyset(&set_);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&set_, s);
    sigprocmask(SIG_BLOCK, &set_, &old_);
    fd_ = signalfd(-1, &set_, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd_ < 0) throw Error("cannot create a signalfd");
  }
  ~StopSignals() {
    ::close(fd_);
    sigprocmask(SIG_SETMASK, &old_, nullptr);
  }
  int fd() const { return fd_; }
  // Returns the stop signal received, 0 if none; SIGCHLD sets child_changed.
  int read(bool& child_changed) {
    signalfd_siginfo info{};
    int stop = 0;
    while (::read(fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      if (info.ssi_signo == SIGCHLD)
        child_changed = true;
      else
        stop = static_cast<int>(info.ssi_signo);
    }
    return stop;
  }

 private:
  sigset_t set_{}, old_{};
  int fd_ = -1;
};

bool any_alive(const std::vector<uint32_t>& pids) {
  for (uint32_t pid : pids)
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM) return true;
  return false;
}

}  // namespace

int run_record(RecordOptions options) {
  install_libbpf_logger();
  // Whatever umask stackwatch was started with (a root shell's may be 0),
  // nothing it creates is writable by other users.
  ::umask(::umask(0) | 022);
  check_privileges();
  validate(options);
  prepare_output_dir(options.output_dir);
  StopSignals signals;

  std::optional<load::CgroupMembers> cgroup;
  if (!options.cgroup.empty()) cgroup.emplace(options.cgroup);
  std::optional<load::LoadThreshold> threshold;
  if (!options.load_threshold.empty()) threshold = load::LoadThreshold::parse(options.load_threshold);
  std::optional<CommandLauncher> command;
  if (!options.command.empty()) command.emplace(options.command);
  bool filter = command.has_value() || !options.pids.empty() || cgroup.has_value();

  symbolizer::Symbolizer symbolizer;
  ProcessTracker::Options tracker_options;
  tracker_options.filter_targets = filter;
  tracker_options.follow_children = command.has_value() || options.children;
  // Stack copies are at most ~17 KiB each (most are 0.5-2 KiB: only what
  // unwinding needs is copied and sent) and StackCopies' reader empties the
  // ring at the latest once it is a quarter full, else every ring_window
  // (about ten samples per CPU): room for two windows' worth of
  // the largest copies at -F on every CPU, four to eight of typical ones
  // (the whole ring ends up resident, mapped twice: keep it small), 1 MiB
  // at least (999 Hz on 2 CPUs: 1 MiB, where it took 16 MiB when the ring
  // waited for the recording's thread);
  // at least 2 MiB when off-CPU copies share it (a busy machine ends
  // hundreds of blocks in 100 ms; BPF wakes the reader once the ring is a
  // quarter full, so it is read every 512 KiB at most: a few ms of such a
  // burst. It was 8 MiB, 16 MB resident, before the reader was woken so and
  // before copies stopped at each thread's stack top). A full ring is
  // counted, and its events kept with a frame-pointer stack. (I/O calls
  // have a ring of their own: IoSampler.)
  if (options.dwarf) {
    double reads = 2.0 * std::chrono::duration<double>(StackCopies::ring_window(options.hz)).count();
    double worst = options.hz * reads * static_cast<double>(online_cpus().size()) * sizeof(sw_stack_sample);
    uint32_t bytes = options.off_cpu ? 2u << 20 : 1u << 20;
    while (bytes < worst && bytes < (256u << 20)) bytes <<= 1;
    tracker_options.stack_samples_bytes = bytes;
  }
  ProcessTracker tracker(tracker_options, symbolizer);

  std::unique_ptr<OnCpuSampler> oncpu;
  if (options.on_cpu) {
    OnCpuSampler::Options o;
    o.hz = options.hz;
    o.filter_targets = filter;
    o.max_stacks = options.max_stacks;
    o.copy_user_stacks = options.dwarf;
    oncpu = std::make_unique<OnCpuSampler>(o, tracker);
  }
  std::unique_ptr<OffCpuSampler> offcpu;
  if (options.off_cpu) {
    OffCpuSampler::Options o;
    o.filter_targets = filter;
    o.max_stacks = options.max_stacks;
    o.min_block_ns = options.min_block_us * 1000;
    o.copy_user_stacks = options.dwarf;
    offcpu = std::make_unique<OffCpuSampler>(o, tracker);
  }
  std::unique_ptr<MemorySampler> memory;
  if (options.memory) {
    MemorySampler::Options o;
    o.max_events_per_second = options.memory_rate;
    o.traced_from_start = command.has_value();
    o.copy_user_stacks = options.dwarf;
    memory = std::make_unique<MemorySampler>(o, tracker);
    for (uint32_t pid : options.pids) memory->add_process(pid);
    // The COMMAND has not exec'd yet: probe the libc it will almost surely
    // map, ours; its own is probed too at the first interval if it differs.
    if (command) memory->add_process(static_cast<uint32_t>(::getpid()));
  }
  std::unique_ptr<IoSampler> io;
  if (options.io) {
    IoSampler::Options o;
    o.filter_targets = filter;
    o.max_stacks = options.max_stacks;
    o.copy_user_stacks = options.dwarf;
    io = std::make_unique<IoSampler>(o, tracker);
  }
  std::unique_ptr<StackCopies> copies;
  if (options.dwarf)
    copies = std::make_unique<StackCopies>(tracker.stack_samples_fd(), tracker.stack_tops_fd(), offcpu.get(), symbolizer);
  if (copies && io) copies->add_ring(io->stack_copies_fd());
  if (copies && memory) copies->add_ring(memory->stack_copies_fd());
  UnwindReport unwind_totals;
  for (uint32_t pid : options.pids) tracker.add_target(pid);
  // The cgroup's members, kept in the pid filter; processes they start are
  // followed by the fork handler between two refreshes.
  std::vector<uint32_t> cgroup_tgids;
  auto sync_cgroup = [&] {
    if (!cgroup) return;
    load::CgroupMembers::Members m = cgroup->list();
    load::IdChanges changes = load::id_changes(cgroup_tgids, m.tgids);
    for (uint32_t tgid : changes.added) tracker.add_target(tgid);
    for (uint32_t tgid : changes.removed) tracker.remove_target(tgid);
    cgroup_tgids = std::move(m.tgids);
  };
  sync_cgroup();
  if (command) {
    tracker.add_target(static_cast<uint32_t>(command->pid()));
    command->start();
  }

  RecordInfo info;
  info.started_at = iso8601_now();
  info.hz = options.hz;
  info.event_name = oncpu ? oncpu->event_name() : "";
  info.on_cpu = options.on_cpu;
  if (command)
    info.targets = "'" + options.command[0] + "' and its children";
  else if (!options.pids.empty()) {
    info.targets = options.pids.size() == 1 ? "pid" : "pids";
    for (size_t i = 0; i < options.pids.size(); ++i) info.targets += (i ? "," : " ") + std::to_string(options.pids[i]);
  } else if (cgroup) {
    info.targets = "cgroup " + cgroup->path();
  } else
    info.targets = "every process";
  info.off_cpu = options.off_cpu;
  info.memory = options.memory;
  info.io = options.io;
  std::FILE* report = options.quiet ? nullptr : stdout;
  if (report) {
    std::fprintf(report, "stackwatch: recording %s", filter ? "" : "every process");
    if (command) std::fprintf(report, "'%s' (pid %d) and its children", options.command[0].c_str(), command->pid());
    for (size_t i = 0; i < options.pids.size(); ++i)
      std::fprintf(report, "%spid %u", i ? ", " : "", options.pids[i]);
    if (oncpu) std::fprintf(report, " on-CPU at %u Hz (%s)", options.hz, info.event_name.c_str());
    if (offcpu)
      std::fprintf(report, "%s off-CPU (blocks of %llu us or more)", oncpu ? " and" : "",
                   static_cast<unsigned long long>(options.min_block_us));
    if (memory) std::fprintf(report, ", memory");
    if (io) std::fprintf(report, ", I/O");
    std::fprintf(report, ", every %.1f s into %s/; Ctrl-C to stop\n", options.interval_s,
                 options.output_dir.c_str());
    std::fflush(report);
  }

  StackResolver resolver(symbolizer, tracker);
  StackTotals totals;
  StackTotals spike_totals;  // the intervals above --load-threshold
  load::LoadMonitor load_monitor;
  load::LoadSeriesWriter series(options.output_dir + "/series.csv");
  load::ProcessSeriesWriter process_series(options.output_dir + "/processes.csv");
  // The detector learns from the first interval on; the interval log must
  // start with it (a stack's frames are logged when the monitor first sees it).
  std::optional<localize::IntervalMonitor> monitor;
  std::optional<localize::IntervalLogWriter> interval_log;
  std::optional<localize::JsonLinesWriter> anomaly_log;
  std::optional<LiveLocalizer> localizer;
  if (options.detect) {
    monitor.emplace();
    interval_log.emplace(options.output_dir + "/intervals.jsonl");
    anomaly_log.emplace(options.output_dir + "/anomalies.jsonl");
    localizer.emplace(LiveLocalizer::Options{options.output_dir, static_cast<double>(options.hz), options.probes,
                                             options.baseline_probes, options.probe_seconds,
                                             options.quiet ? nullptr : stdout});
  }
  // Outstanding memory is a level: each interval's replaces the last.
  std::vector<StackSample> memory_levels;
  std::optional<localize::MemoryGrowthDetector> memory_growth;
  if (memory && options.detect) memory_growth.emplace();
  auto start = Clock::now();
  auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.interval_s));
  auto next_drain = start + interval;
  std::optional<Clock::time_point> end;
  if (options.duration_s > 0)
    end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.duration_s));
  uint64_t index = 0;
  int64_t interval_start_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();

  auto drain = [&](bool final) {
    // A file that cannot be written (disk full) must not cost the interval:
    // every write is tried, the data goes into the totals either way, and
    // the first error is thrown at the end.
    std::optional<Error> write_error;
    auto guarded = [&](auto&& write) {
      try {
        write();
      } catch (const Error& e) {
        if (!write_error) write_error = e;
      }
    };
    tracker.consume_events();
    Interval iv;
    iv.index = index++;
    iv.start_unix_ns = interval_start_ns;
    iv.end_unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    interval_start_ns = iv.end_unix_ns;
    std::vector<RawStack> raw;
    // The COMMAND has exec'd by now: probe its own libc if it is not ours.
    // One that cannot be probed (statically linked) is said once; the
    // recording goes on without its allocations.
    if (memory && command && index == 1) {
      try {
        memory->add_process(static_cast<uint32_t>(command->pid()));
      } catch (const Error& e) {
        std::fprintf(stderr, "stackwatch: %s\n", e.what());
      }
    }
    for (RawInterval r : {oncpu ? oncpu->drain() : RawInterval{}, offcpu ? offcpu->drain() : RawInterval{},
                          memory ? memory->drain() : RawInterval{}, io ? io->drain() : RawInterval{}}) {
      raw.insert(raw.end(), std::make_move_iterator(r.stacks.begin()), std::make_move_iterator(r.stacks.end()));
      iv.drops += r.drops;
    }
    if (copies) {
      copies->consume();  // after the flips: every copy taken before them is in the ring
      for (RawStack& r : copies->take()) raw.push_back(std::move(r));
      if (io || memory) attribute_copy_fallbacks(raw);
      UnwindReport u = copies->take_report();
      unwind_totals.stacks += u.stacks;
      unwind_totals.complete += u.complete;
      unwind_totals.queued_by_reader += u.queued_by_reader;
      unwind_totals.copied_bytes += u.copied_bytes;
      unwind_totals.reader_wakeups += u.reader_wakeups;
      unwind_totals.max_queued_bytes = std::max(unwind_totals.max_queued_bytes, u.max_queued_bytes);
      for (auto& [reason, n] : u.incomplete) unwind_totals.incomplete[reason] += n;
      if (report && u.stacks > u.complete) {
        std::fprintf(report, "  user stacks not completed: %llu of %llu (", static_cast<unsigned long long>(u.stacks - u.complete),
                     static_cast<unsigned long long>(u.stacks));
        bool first = true;
        for (auto& [reason, n] : u.incomplete) {
          std::fprintf(report, "%s%s %llu", first ? "" : ", ", reason.c_str(), static_cast<unsigned long long>(n));
          first = false;
        }
        std::fprintf(report, ")\n");
      }
      info.extra["unwind"] = {{"method", "dwarf"},
                              {"stacks", unwind_totals.stacks},
                              {"complete", unwind_totals.complete},
                              {"incomplete", unwind_totals.incomplete},
                              {"queued_by_reader", unwind_totals.queued_by_reader},
                              {"max_queued_bytes", unwind_totals.max_queued_bytes},
                              {"copied_bytes", unwind_totals.copied_bytes},
                              {"reader_wakeups", unwind_totals.reader_wakeups},
                              {"trimmed_copies", copies->trimmed_copies()},
                              {"trimmed_too_short", copies->trimmed_too_short()}};
    } else {
      info.extra["unwind"] = {{"method", "frame pointers"}};
    }
    // Mappings that changed since a snapshot (dlopen, the loader mapping
    // libraries right after exec) are picked up where it matters: the
    // symbolizer re-reads a live process's snapshot when an address misses it.
    iv.stacks = resolver.resolve(raw);
    { std::vector<RawStack> done = std::move(raw); }  // freed before the rest of the interval's work
    // Memory and I/O stacks go their own way: the CPU detector, localizer
    // and per-process CPU series see only on- and off-CPU stacks.
    std::vector<StackSample> resources;
    std::vector<load::NamedValue> memory_series;  // memory/io columns of series.csv
    if (memory || io) {
      auto cpu_end = std::stable_partition(iv.stacks.begin(), iv.stacks.end(), [](const StackSample& s) {
        return s.kind == StackKind::kOnCpu || s.kind == StackKind::kOffCpu;
      });
      resources.assign(std::make_move_iterator(cpu_end), std::make_move_iterator(iv.stacks.end()));
      iv.stacks.erase(cpu_end, iv.stacks.end());
    }
    std::vector<uint32_t> exited = tracker.after_drain();
    for (uint32_t tgid : exited)
      if (copies) copies->forget_process(tgid);
    totals.drops += iv.drops;
    double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    // The machine's load over the interval, and each process's share of it.
    load::LoadSnapshot load = load_monitor.sample();
    std::vector<localize::Anomaly> anomalies;
    if (monitor) {
      std::map<std::string, double> load_values;
      for (const auto& v : load.values) load_values[v.name] = v.value;
      localize::IntervalRecord record;
      anomalies = monitor->observe(iv, load_values, &record);
      guarded([&] { interval_log->append(record); });
      for (const auto& a : anomalies) guarded([&] { anomaly_log->append(localize::anomaly_to_json(a)); });
    }
    if (report) print_interval(report, iv, options.top, elapsed);
    for (const auto& a : anomalies)
      if (report) std::fprintf(report, "  ANOMALY %s\n", a.description.c_str());
    totals.add(iv.stacks);  // with the detector's labels
    if (memory || io) {
      if (report) print_resources(report, resources, options.top);
      uint64_t io_bytes = 0, io_calls = 0;
      if (memory) memory_levels.clear();
      std::vector<StackSample> summed;
      for (StackSample& s : resources) {
        if (s.kind == StackKind::kIo && !is_block_io(s)) {
          io_bytes += s.bytes;
          io_calls += s.count;
        }
        if (s.kind == StackKind::kMemory && s.detail.empty())
          memory_levels.push_back(std::move(s));
        else
          summed.push_back(std::move(s));
      }
      totals.add(summed);
      uint64_t outstanding = 0;
      for (const StackSample& s : memory_levels) outstanding += s.bytes;
      if (memory) {
        info.extra["memory"] = {{"outstanding_bytes", outstanding}, {"dropped_events", memory->dropped_events()}};
        memory_series.push_back({"memory_outstanding_bytes", static_cast<double>(outstanding)});
      }
      if (io) {
        memory_series.push_back({"io_bytes", static_cast<double>(io_bytes)});
        memory_series.push_back({"io_calls", static_cast<double>(io_calls)});
      }
      if (memory_growth)
        for (const localize::MemoryGrowth& g :
             memory_growth->observe(iv.index, iv.start_unix_ns, iv.end_unix_ns, memory_levels)) {
          guarded([&] { anomaly_log->append(g.to_json()); });
          if (report) {
            std::fprintf(report, "  ANOMALY %s\n", g.anomaly.description.c_str());
            std::fprintf(report, "  HINT %s\n", g.hint.c_str());
          }
        }
    }
    if (localizer)
      localizer->on_interval(iv, static_cast<double>(iv.end_unix_ns - iv.start_unix_ns) / 1e9, anomalies);
    bool spike = threshold && threshold->exceeded(load);
    if (report) {
      std::fprintf(report, "  %s\n", load::format_load_summary(load).c_str());
      if (spike) std::fprintf(report, "  load above threshold: %s\n", threshold->explain(load).c_str());
    }
    if (spike) spike_totals.add(iv.stacks);
    std::vector<load::NamedValue> extra = {{"oncpu_samples", 0}, {"offcpu_ms", 0}, {"load_spike", spike ? 1.0 : 0.0}};
    extra.insert(extra.end(), memory_series.begin(), memory_series.end());
    std::map<uint32_t, load::ProcessLoadRow> per_process;
    for (const StackSample& s : iv.stacks) {
      load::ProcessLoadRow& row = per_process[s.tgid];
      row.interval = iv.index;
      row.tgid = s.tgid;
      row.comm = s.process_name;
      if (s.kind == StackKind::kOnCpu) {
        row.oncpu_samples += s.count;
        extra[0].value += static_cast<double>(s.count);
      } else {
        double ms = static_cast<double>(s.off_ns) / 1e6;
        extra[1].value += ms;
        if (s.off_state == OffCpuState::kRunning) row.off_ms_running += ms;
        else if (s.off_state == OffCpuState::kInterruptible) row.off_ms_interruptible += ms;
        else if (s.off_state == OffCpuState::kUninterruptible) row.off_ms_uninterruptible += ms;
      }
    }
    std::vector<load::ProcessLoadRow> rows;
    for (auto& [tgid, row] : per_process) {
      row.oncpu_share = extra[0].value > 0 ? static_cast<double>(row.oncpu_samples) / extra[0].value : 0;
      rows.push_back(std::move(row));
    }
    guarded([&] { series.append(load, extra); });
    guarded([&] { process_series.append(rows); });
    if (threshold)
      guarded([&] {
        write_file_atomically(options.output_dir + "/load-spikes.folded",
                              flamegraph::folded_to_string(to_folded(spike_totals.stacks(), FoldedWeight::kSamples)));
      });
    info.elapsed_s = elapsed;
    info.intervals = index;
    totals.end_interval(exited);  // bounded: old and exited stacks merged, totals exact
    spike_totals.end_interval(exited);
    info.extra["aged_out"] = totals.aging_json();
    guarded([&] { write_outputs(options.output_dir, totals, info, final, memory_levels); });
    if (write_error) throw *write_error;
  };

  // The queued stack copies are unwound every kMaxPollMs, or sooner when
  // the reader says the queue passed StackCopies::kWakeCallerBytes (a
  // wake-up of this thread is one more preempted CPU on a busy machine: at
  // 999 Hz, ten a second rather than fifty).
  const char* stop_reason = nullptr;
  uint64_t write_failures = 0;  // intervals in a row whose outputs could not be written
  while (!stop_reason) {
    auto now = Clock::now();
    auto wake = next_drain;
    if (end && *end < wake) wake = *end;
    int timeout_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count());
    timeout_ms = std::clamp(timeout_ms, 0, kMaxPollMs);
    pollfd fds[3] = {{signals.fd(), POLLIN, 0}, {tracker.poll_fd(), POLLIN, 0}, {copies ? copies->wake_fd() : -1, POLLIN, 0}};
    ::poll(fds, 3, timeout_ms);
    tracker.consume_events();
    if (copies) copies->consume();
    sync_cgroup();
    bool child_changed = false;
    if (int sig = signals.read(child_changed)) stop_reason = sig == SIGINT ? "interrupted" : "terminated";
    if (command && (child_changed || command->reap()) && command->reap()) stop_reason = "the command exited";
    if (!command && !options.pids.empty() && !any_alive(options.pids)) stop_reason = "every target process exited";
    now = Clock::now();
    if (end && now >= *end) stop_reason = "duration reached";
    if (stop_reason) break;
    if (now >= next_drain) {
      // A failed write (disk full, quota) keeps the previous complete files
      // and the recording goes on: the totals are rewritten whole at the
      // next interval, so nothing is lost once there is room again.
      try {
        drain(false);
        release_free_heap();  // the interval's temporaries are freed now: keep RSS at what is in use
        if (write_failures > 0)
          std::fprintf(stderr, "stackwatch: the outputs in %s/ are written again\n", options.output_dir.c_str());
        write_failures = 0;
      } catch (const Error& e) {
        if (write_failures++ == 0)
          std::fprintf(stderr, "stackwatch: %s; still recording, retrying every interval\n", e.what());
      }
      next_drain += interval;
      if (next_drain < Clock::now()) next_drain = Clock::now() + interval;  // fell behind: skip, don't burst
    }
  }
  // Final interval: everything recorded since the last drain.
  if (offcpu) info.stale_thread_entries = offcpu->stale_thread_entries();
  try {
    drain(true);
    if (localizer) localizer->finish();
  } catch (const Error& e) {
    std::fprintf(stderr, "stackwatch: %s\n", e.what());
    return 1;
  }
  if (report) {
    std::fprintf(report, "\nstackwatch: stopped (%s) after %.1f s: %llu on-CPU samples, %llu off-CPU blocks, %llu dropped; outputs in %s/\n",
                 stop_reason, info.elapsed_s, static_cast<unsigned long long>(totals.samples(StackKind::kOnCpu)),
                 static_cast<unsigned long long>(totals.samples(StackKind::kOffCpu)),
                 static_cast<unsigned long long>(totals.drops.total()), options.output_dir.c_str());
  }
  return 0;
}

}  // namespace stackwatch::profiler
