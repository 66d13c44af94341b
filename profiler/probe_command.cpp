// stackwatch probe -p PID FUNC... [-e BINARY] [-d SECONDS] [-o FILE]:
// attaches the latency probes (latency_probes.h) by hand for a bounded time
// and prints a per-function report in the manner of BCC's funclatency
// (log2 histogram, then the numbers and a one-line hint).
#include <signal.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include "localize/root_cause_hint.h"
#include "profiler/commands.h"
#include "profiler/latency_probes.h"
#include "recording/atomic_file.h"
#include "recording/error.h"

namespace stackwatch::cli {

namespace {

// Poll for a stop signal or the target's exit this often.
constexpr long kPollMs = 100;

struct ProbeCommandOptions {
  int pid = -1;
  std::string binary;
  std::vector<std::string> functions;
  double seconds = 10;
  std::string output;
};

std::string percent(double share) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", share * 100);
  return buf;
}

void print_histogram(std::FILE* out, const std::vector<uint64_t>& log2) {
  size_t first = 0;
  while (first < log2.size() && log2[first] == 0) ++first;
  if (first == log2.size()) return;
  uint64_t peak = *std::max_element(log2.begin(), log2.end());
  std::fprintf(out, "%24s : %-8s %s\n", "nsecs", "count", "distribution");
  constexpr int kWidth = 40;
  for (size_t i = first; i < log2.size(); ++i) {
    unsigned long long lo = i == 0 ? 0 : 1ULL << i, hi = (1ULL << (i + 1)) - 1;
    int stars = peak ? static_cast<int>(std::lround(kWidth * static_cast<double>(log2[i]) / static_cast<double>(peak))) : 0;
    std::string bar(static_cast<size_t>(stars), '*');
    bar.resize(kWidth, ' ');
    std::fprintf(out, "%12llu -> %-10llu: %-8llu |%s|\n", lo, hi, static_cast<unsigned long long>(log2[i]), bar.c_str());
  }
}

void print_function(std::FILE* out, const localize::FunctionLatency& f) {
  using localize::format_duration_ns;
  char offset[32];
  std::snprintf(offset, sizeof offset, "+0x%llx", static_cast<unsigned long long>(f.file_offset));
  std::fprintf(out, "\n%s  (%s%s)\n", f.function.c_str(), f.module.c_str(), offset);
  print_histogram(out, f.log2_histogram);
  std::fprintf(out, "  calls %llu in %.1f s", static_cast<unsigned long long>(f.calls), f.seconds);
  if (f.calls) {
    std::fprintf(out, "   p50 %s   p99 %s   max %s   mean %s\n", format_duration_ns(f.p50_ns).c_str(),
                 format_duration_ns(f.p99_ns).c_str(), format_duration_ns(f.max_ns).c_str(),
                 format_duration_ns(f.mean_ns).c_str());
    std::fprintf(out, "  time in calls: on CPU %s (in system calls %s), blocked %s, runnable (waiting for a CPU) %s\n",
                 percent(f.on_cpu_share).c_str(), percent(f.syscall_cpu_share).c_str(), percent(f.blocked_share).c_str(),
                 percent(f.runqueue_share).c_str());
    std::fprintf(out, "  context switches per call: %.2f voluntary, %.2f involuntary\n", f.voluntary_switches_per_call,
                 f.involuntary_switches_per_call);
    for (const auto& b : f.blocked)
      std::fprintf(out, "  %s %s (%s, %llu times) in %s\n",
                   b.state == OffCpuState::kRunning ? "waited for a CPU" : "blocked",
                   format_duration_ns(static_cast<double>(b.ns)).c_str(),
                   to_string(b.state), static_cast<unsigned long long>(b.events),
                   localize::short_kernel_path("", b.kernel_frames).c_str());
    for (const auto& c : f.syscalls)
      std::fprintf(out, "  on CPU %s in the kernel (%llu calls) in %s\n", format_duration_ns(static_cast<double>(c.ns)).c_str(),
                   static_cast<unsigned long long>(c.calls), c.name.c_str());
  } else {
    std::fprintf(out, "\n");
  }
  std::fprintf(out, "  hint: %s\n", localize::make_hint(f).sentence.c_str());
}

bool alive(int pid) { return pid <= 0 || ::kill(pid, 0) == 0 || errno == EPERM; }

// Waits until the window ends, a stop signal arrives or the process exits;
// returns why it stopped.
std::string wait_window(const profiler::LatencyProbes& probes, int pid) {
  sigset_t stop_set, old;
  sigemptyset(&stop_set);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&stop_set, s);
  sigprocmask(SIG_BLOCK, &stop_set, &old);
  std::string why = "time is up";
  while (!probes.expired()) {
    timespec ts{0, kPollMs * 1000000L};
    int sig = sigtimedwait(&stop_set, nullptr, &ts);
    if (sig > 0) {
      why = sig == SIGINT ? "interrupted" : "terminated";
      break;
    }
    if (!alive(pid)) {
      why = "process " + std::to_string(pid) + " exited";
      break;
    }
  }
  sigprocmask(SIG_SETMASK, &old, nullptr);
  return why;
}

void run_probe(const ProbeCommandOptions& o) {
  if (o.pid <= 0 && o.binary.empty()) throw Error("give the process (-p PID) or the binary (-e FILE) to probe");
  if (o.pid > 0 && !alive(o.pid)) throw Error("no process " + std::to_string(o.pid));
  if (o.seconds <= 0) throw Error("-d must be a positive number of seconds");
  std::vector<profiler::ProbeTarget> targets;
  for (const std::string& f : o.functions) targets.push_back(profiler::resolve_probe_target(f, o.pid, o.binary));

  profiler::LatencyProbes probes(targets, {o.pid, o.seconds});
  std::fprintf(stdout, "Probing %zu function%s %s for %.0f s (uprobe + uretprobe); Ctrl-C to stop early.\n",
               targets.size(), targets.size() == 1 ? "" : "s",
               o.pid > 0 ? ("in process " + std::to_string(o.pid)).c_str() : ("in " + o.binary).c_str(), o.seconds);
  std::fflush(stdout);
  std::string why = wait_window(probes, o.pid);
  probes.detach();
  auto report = probes.report();
  std::fprintf(stdout, "Stopped: %s; probes detached.\n", why.c_str());
  for (const auto& f : report) print_function(stdout, f);
  if (uint64_t d = probes.dropped()) std::fprintf(stdout, "\n%llu calls or blocks were not measured (see bpf/latency.h)\n", static_cast<unsigned long long>(d));
  if (!o.output.empty()) {
    nlohmann::json functions = nlohmann::json::array();
    for (const auto& f : report) functions.push_back(f.to_json());
    write_file_atomically(o.output, nlohmann::json{{"functions", functions}}.dump(2) + "\n");
  }
}

}  // namespace

void register_probe_command(CLI::App& app) {
  auto o = std::make_shared<ProbeCommandOptions>();
  auto* cmd = app.add_subcommand(
      "probe",
      "Attach uprobe latency probes to functions of a process (or binary) for a while and print, per function, the "
      "latency histogram, p50/p99/max, on-CPU vs blocked time, context switches and where the calls blocked");
  cmd->add_option("-p,--pid", o->pid, "Process to probe");
  cmd->add_option("-e,--binary", o->binary, "ELF file holding the functions (with -p: only that process's calls)");
  cmd->add_option("FUNC", o->functions, "Function names (mangled or demangled) or addresses (0x...)")->required();
  cmd->add_option("-d,--duration", o->seconds, "Seconds to probe")->capture_default_str();
  cmd->add_option("-o,--output", o->output, "Also write the measurements as JSON (probes.json format)");
  cmd->callback([o] { run_probe(*o); });
}

}  // namespace stackwatch::cli
