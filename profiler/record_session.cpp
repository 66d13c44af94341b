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
  // Stack copies are ~17 KiB each and the ring is read every 100 ms: room
  // for half a second of on-CPU samples at -F on every CPU, at least 8 MiB
  // for the off-CPU copies (the whole ring ends up resident: keep it small).
  if (options.dwarf) {
    double per_half_second = options.hz * 0.5 * static_cast<double>(online_cpus().size()) * sizeof(sw_stack_sample);
    uint32_t bytes = 8u << 20;
    while (bytes < per_half_second && bytes < (256u << 20)) bytes <<= 1;
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
  std::unique_ptr<StackCopies> copies;
  if (options.dwarf)
    copies = std::make_unique<StackCopies>(tracker.stack_samples_fd(), offcpu ? offcpu->stacks_fd() : -1, symbolizer);
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
                                             options.probe_seconds, options.quiet ? nullptr : stdout});
  }
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
    tracker.consume_events();
    Interval iv;
    iv.index = index++;
    iv.start_unix_ns = interval_start_ns;
    iv.end_unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    interval_start_ns = iv.end_unix_ns;
    std::vector<RawStack> raw;
    for (RawInterval r : {oncpu ? oncpu->drain() : RawInterval{}, offcpu ? offcpu->drain() : RawInterval{}}) {
      raw.insert(raw.end(), std::make_move_iterator(r.stacks.begin()), std::make_move_iterator(r.stacks.end()));
      iv.drops += r.drops;
    }
    if (copies) {
      copies->consume();  // after the flips: every copy taken before them is in the ring
      for (RawStack& r : copies->take()) raw.push_back(std::move(r));
      UnwindReport u = copies->take_report();
      unwind_totals.stacks += u.stacks;
      unwind_totals.complete += u.complete;
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
                              {"incomplete", unwind_totals.incomplete}};
    } else {
      info.extra["unwind"] = {{"method", "frame pointers"}};
    }
    // Mappings that changed since a snapshot (dlopen, the loader mapping
    // libraries right after exec) are picked up where it matters: the
    // symbolizer re-reads a live process's snapshot when an address misses it.
    iv.stacks = resolver.resolve(raw);
    for (uint32_t tgid : tracker.after_drain())
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
      interval_log->append(record);
      for (const auto& a : anomalies) anomaly_log->append(localize::anomaly_to_json(a));
    }
    if (report) print_interval(report, iv, options.top, elapsed);
    for (const auto& a : anomalies)
      if (report) std::fprintf(report, "  ANOMALY %s\n", a.description.c_str());
    totals.add(iv.stacks);  // with the detector's labels
    if (localizer)
      localizer->on_interval(iv, static_cast<double>(iv.end_unix_ns - iv.start_unix_ns) / 1e9, anomalies);
    bool spike = threshold && threshold->exceeded(load);
    if (report) {
      std::fprintf(report, "  %s\n", load::format_load_summary(load).c_str());
      if (spike) std::fprintf(report, "  load above threshold: %s\n", threshold->explain(load).c_str());
    }
    if (spike) spike_totals.add(iv.stacks);
    std::vector<load::NamedValue> extra = {{"oncpu_samples", 0}, {"offcpu_ms", 0}, {"load_spike", spike ? 1.0 : 0.0}};
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
    series.append(load, extra);
    process_series.append(rows);
    if (threshold)
      write_file_atomically(options.output_dir + "/load-spikes.folded",
                            flamegraph::folded_to_string(to_folded(spike_totals.stacks(), FoldedWeight::kSamples)));
    info.elapsed_s = elapsed;
    info.intervals = index;
    write_outputs(options.output_dir, totals, info, final);
  };

  const char* stop_reason = nullptr;
  while (!stop_reason) {
    auto now = Clock::now();
    auto wake = next_drain;
    if (end && *end < wake) wake = *end;
    int timeout_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count());
    timeout_ms = std::clamp(timeout_ms, 0, kMaxPollMs);
    pollfd fds[2] = {{signals.fd(), POLLIN, 0}, {tracker.poll_fd(), POLLIN, 0}};
    ::poll(fds, 2, timeout_ms);
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
      drain(false);
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
