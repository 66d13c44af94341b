// Overhead of stackwatch record against the reference tools, measured on a
// fixed workload in the same run (issue figures: slowdown %, stackwatch's own
// CPU and peak RSS).
//
//   overhead_bench oncpu  [ROUNDS]   2-thread CPU workload: alone, under
//                                    stackwatch record at 49 and 999 Hz (the
//                                    default --call-graph dwarf, and fp), under
//                                    perf record -a -g at the same rates
//   overhead_bench offcpu [ROUNDS]   pipe ping-pong: alone, under
//                                    stackwatch record --off-cpu, under
//                                    libbpf-tools offcputime
//   overhead_bench unwind [ROUNDS]   the no-frame-pointer chain fixture (fixed
//                                    work): stackwatch --call-graph dwarf and
//                                    fp, perf record --call-graph dwarf, at
//                                    49 and 999 Hz; plus BPF ns per sample
//                                    (kernel.bpf_stats_enabled)
//
// A third argument keeps only the configurations whose name holds it (and
// the workload alone): `overhead_bench oncpu 9 "stackwatch dwarf"`.
//
// Configurations are alternated within each round so drift in the machine's
// speed hits them all alike; the median over rounds is reported. Needs root.
//
// A tool's CPU is split by phase, from /proc/PID/stat (utime + stime) read
// when the workload starts and when it ends: start-up (BPF load, kallsyms;
// everything before the workload), steady state (while the workload runs, as
// % of one core over the workload's wall time: what the goal of 1% is about)
// and shutdown (the final drain and rendering after the stop signal). Peak RSS
// is given twice: while the workload ran (VmHWM just before the stop) and over
// the whole life (ru_maxrss, shutdown included).
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

pid_t spawn(const std::vector<std::string>& argv, bool quiet) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    if (quiet) {
      freopen("/dev/null", "w", stdout);
      freopen("/dev/null", "w", stderr);
    }
    execvp(args[0], args.data());
    _exit(127);
  }
  return pid;
}

struct Profiler {
  std::string name;
  std::vector<std::string> argv;  // empty: no profiler (baseline)
};

// Run time per invocation of stackwatch's BPF programs, from the kernel's
// statistics (kernel.bpf_stats_enabled=1), read while they are loaded.
double bpf_ns_per_run(const std::string& prog_name) {
  FILE* p = popen("bpftool prog show --json 2>/dev/null", "r");
  if (!p) return 0;
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  pclose(p);
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (!doc.is_array()) return 0;
  uint64_t ns = 0, cnt = 0;
  for (auto& prog : doc)
    if (prog.value("name", "") == prog_name) {
      ns += prog.value("run_time_ns", uint64_t{0});
      cnt += prog.value("run_cnt", uint64_t{0});
    }
  return cnt ? double(ns) / cnt : 0;
}

// A small /proc file read with read(2) into a buffer, parsed with the C
// library: the harness is itself sampled by a machine-wide recording while
// it reads these around the workload, and iostreams put its frames in
// libstdc++, whose installed debug information (~5 MB once indexed) a
// recording then loads to name them: rounds that caught it peaked ~5 MB
// higher than the rest.
std::string read_proc(const std::string& path) {
  char buf[4096];
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// CPU seconds (user + system) a live process has used so far, from
// /proc/PID/stat; -1 if it cannot be read.
double process_cpu_s(pid_t pid) {
  std::string text = read_proc("/proc/" + std::to_string(pid) + "/stat");
  size_t close = text.rfind(')');  // comm may hold spaces
  if (close == std::string::npos || close + 2 > text.size()) return -1;
  // Fields 3..: state ppid pgrp session tty_nr tpgid flags minflt cminflt
  // majflt cmajflt utime stime.
  unsigned long long utime = 0, stime = 0;
  if (std::sscanf(text.c_str() + close + 2, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu", &utime,
                  &stime) != 2)
    return -1;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// VmHWM (peak resident set so far) of a live process in KiB; 0 if unknown.
long process_hwm_kb(pid_t pid) {
  std::string text = read_proc("/proc/" + std::to_string(pid) + "/status");
  size_t at = text.find("VmHWM:");
  return at == std::string::npos ? 0 : std::atol(text.c_str() + at + 6);
}

bool g_bpf_stats = false;  // kernel.bpf_stats_enabled set by this run

struct Run {
  double workload_s = 0;
  double workload_cpu_s = 0;  // the workload's own CPU time (user + system)
  double bpf_ns = 0;  // per program run, stackwatch only
  double profiler_cpu_s = 0;
  double profiler_life_s = 0;
  long profiler_maxrss_kb = 0;
  double startup_cpu_s = 0;  // before the workload started
  double steady_cpu_s = 0;   // while the workload ran
  double stop_cpu_s = 0;     // after the stop signal
  long steady_hwm_kb = 0;    // peak RSS before the stop signal
};

// stackwatch's output directory for one run: /tmp/sw_bench_out/NAME-rROUND
// (spaces as dashes), kept so a round that stands out can be looked at.
std::vector<std::string> with_run_output(std::vector<std::string> argv, const std::string& name, int round) {
  if (!name.starts_with("stackwatch")) return argv;
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == "-o") {
      std::string leaf = name;
      std::replace(leaf.begin(), leaf.end(), ' ', '-');
      argv[i + 1] += "/" + leaf + "-r" + std::to_string(round);
    }
  return argv;
}

Run run_once(const Profiler& p, const std::vector<std::string>& workload, int round) {
  Run r;
  pid_t prof = -1;
  double prof_start = now_s();
  if (!p.argv.empty()) {
    prof = spawn(with_run_output(p.argv, p.name, round), true);
    // Loading BPF programs / opening perf buffers: let the tool settle.
    usleep(1500 * 1000);
  }
  double cpu_at_start = prof > 0 ? process_cpu_s(prof) : 0;
  double t0 = now_s();
  pid_t w = spawn(workload, true);
  int status;
  rusage wru{};
  wait4(w, &status, 0, &wru);
  r.workload_s = now_s() - t0;
  r.workload_cpu_s = static_cast<double>(wru.ru_utime.tv_sec + wru.ru_stime.tv_sec) +
                     static_cast<double>(wru.ru_utime.tv_usec + wru.ru_stime.tv_usec) / 1e6;
  if (prof > 0) {
    double cpu_at_end = process_cpu_s(prof);
    r.steady_hwm_kb = process_hwm_kb(prof);
    // bpftool is itself a process a machine-wide recording samples and names
    // in its last interval: run only where the statistics are on (unwind).
    if (g_bpf_stats) r.bpf_ns = bpf_ns_per_run("sample_on_cpu");
    kill(prof, SIGINT);
    rusage ru{};
    wait4(prof, &status, 0, &ru);
    r.profiler_life_s = now_s() - prof_start;
    r.profiler_cpu_s = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    r.profiler_maxrss_kb = ru.ru_maxrss;
    r.startup_cpu_s = cpu_at_start;
    r.steady_cpu_s = cpu_at_end - cpu_at_start;
    r.stop_cpu_s = r.profiler_cpu_s - cpu_at_end;
  }
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// A 90% confidence interval for the median of v: the 5th and 95th
// percentiles of the medians of 4000 resamples (percentile bootstrap, fixed
// seed so a run's figures can be recomputed). The statement "slowed it less
// than perf" holds at that confidence when the whole interval is below 0.
std::pair<double, double> median_interval(const std::vector<double>& v) {
  if (v.size() < 2) return {v.empty() ? 0 : v[0], v.empty() ? 0 : v[0]};
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  std::vector<double> medians, sample(v.size());
  for (int b = 0; b < 4000; ++b) {
    for (double& x : sample) x = v[next() % v.size()];
    medians.push_back(median(sample));
  }
  std::sort(medians.begin(), medians.end());
  return {medians[medians.size() * 5 / 100], medians[medians.size() * 95 / 100]};
}

// "49 Hz" from "stackwatch dwarf 49 Hz"; empty when the name gives no rate.
std::string rate_of(const std::string& name) {
  size_t hz = name.rfind(" Hz");
  if (hz == std::string::npos || hz + 3 != name.size()) return {};
  size_t space = name.rfind(' ', hz - 1);
  return space == std::string::npos ? std::string() : name.substr(space + 1);
}

// Each stackwatch configuration against perf at the same rate (against ==
// "perf"), or each tool against the sampling floor (sampling_floor.c: the
// sampling interrupts alone, which every tool pays), round by round: both
// ran in the same round, minutes apart at most, so the machine's drift
// between rounds (which moves every median by about 1% on this VM) cancels
// out of the difference. Prints the median difference of the slowdowns in
// percentage points, its range, and in how many rounds the first one's run
// was the faster.
void print_paired(const std::vector<Profiler>& profilers, std::map<std::string, std::vector<Run>>& runs,
                  const std::string& against, const char* title, double Run::*metric = &Run::workload_s) {
  // The rows: every sampler with a rate but the reference itself; against
  // perf, stackwatch's alone.
  auto compared = [&](const std::string& name) {
    if (rate_of(name).empty() || name.starts_with(against)) return false;
    return name.starts_with("stackwatch") || (against != "perf" && name.starts_with("perf"));
  };
  bool header = false;
  for (const Profiler& p : profilers) {
    if (!compared(p.name)) continue;
    auto perf = std::find_if(profilers.begin(), profilers.end(), [&](const Profiler& q) {
      return q.name.starts_with(against) && rate_of(q.name) == rate_of(p.name);
    });
    if (perf == profilers.end()) continue;
    const std::vector<Run>& ours = runs[p.name];
    const std::vector<Run>& theirs = runs[perf->name];
    const std::vector<Run>& alone = runs["alone"];
    std::vector<double> diff;
    size_t faster = 0;
    for (size_t r = 0; r < std::min({ours.size(), theirs.size(), alone.size()}); ++r) {
      if (alone[r].*metric <= 0) continue;
      diff.push_back(100.0 * (ours[r].*metric - theirs[r].*metric) / alone[r].*metric);
      faster += ours[r].*metric < theirs[r].*metric;
    }
    if (diff.empty()) continue;
    if (!header) {
      std::printf("%s\n", title);
      header = true;
    }
    auto [lo, hi] = std::minmax_element(diff.begin(), diff.end());
    auto [ci_lo, ci_hi] = median_interval(diff);
    std::printf("  %-28s vs %-28s median %+6.2f  90%% CI %+6.2f .. %+6.2f  range %+6.2f .. %+6.2f  "
                "faster in %zu of %zu rounds\n",
                p.name.c_str(), perf->name.c_str(), median(diff), ci_lo, ci_hi, *lo, *hi, faster, diff.size());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string scenario = argc > 1 ? argv[1] : "oncpu";
  int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  std::string only = argc > 3 ? argv[3] : "";  // configurations whose name holds this (and "alone")
  std::string dir = BENCH_DIR;
  std::string sw = STACKWATCH_BIN;
  std::vector<Profiler> profilers;
  std::vector<std::string> workload;
  if (scenario == "oncpu") {
    workload = {dir + "/bench_cpu_workload", "2400000000"};
    auto sw_run = [&](const char* hz, const char* cg) {
      return std::vector<std::string>{sw, "record", "--on-cpu", "-F", hz, "--call-graph", cg, "-q", "-o", "/tmp/sw_bench_out"};
    };
    profilers = {{"alone", {}},
                 {"stackwatch dwarf 49 Hz", sw_run("49", "dwarf")},
                 {"stackwatch dwarf 999 Hz", sw_run("999", "dwarf")},
                 {"stackwatch fp 49 Hz", sw_run("49", "fp")},
                 {"stackwatch fp 999 Hz", sw_run("999", "fp")},
                 {"perf record -a -g 49 Hz", {"perf", "record", "-a", "-g", "-F", "49", "-o", "/tmp/sw_bench_perf.data"}},
                 {"perf record -a -g 999 Hz",
                  {"perf", "record", "-a", "-g", "-F", "999", "-o", "/tmp/sw_bench_perf.data"}},
                 {"sampling floor 49 Hz", {dir + "/bench_sampling_floor", "49"}},
                 {"sampling floor 999 Hz", {dir + "/bench_sampling_floor", "999"}}};
  } else if (scenario == "offcpu") {
    workload = {dir + "/bench_pingpong", "200000"};
    profilers = {{"alone", {}},
                 {"stackwatch --off-cpu", {sw, "record", "--off-cpu", "-q", "-o", "/tmp/sw_bench_out"}},
                 {"offcputime (libbpf-tools)", {"offcputime", "-m", "1000"}}};
  } else if (scenario == "unwind") {
    workload = {dir + "/../../tests/e2e/fixtures/e2e_chain_nofp", "work", "3000"};
    auto sw_run = [&](const char* hz, const char* cg) {
      return std::vector<std::string>{sw, "record", "--on-cpu", "-F", hz, "--call-graph", cg, "-q", "-o", "/tmp/sw_bench_out"};
    };
    auto perf_run = [](const char* hz) {
      return std::vector<std::string>{"perf", "record", "-a", "--call-graph", "dwarf", "-F", hz, "-o", "/tmp/sw_bench_perf.data"};
    };
    profilers = {{"alone", {}},
                 {"stackwatch dwarf 49 Hz", sw_run("49", "dwarf")},
                 {"stackwatch fp 49 Hz", sw_run("49", "fp")},
                 {"perf --call-graph dwarf 49 Hz", perf_run("49")},
                 {"stackwatch dwarf 999 Hz", sw_run("999", "dwarf")},
                 {"stackwatch fp 999 Hz", sw_run("999", "fp")},
                 {"perf --call-graph dwarf 999 Hz", perf_run("999")}};
    std::system("sysctl -q kernel.bpf_stats_enabled=1");
    g_bpf_stats = true;
  } else {
    std::fprintf(stderr, "usage: overhead_bench oncpu|offcpu|unwind [ROUNDS [CONFIGURATION-SUBSTRING]]\n");
    return 2;
  }
  std::map<std::string, std::vector<Run>> runs;
  std::erase_if(profilers, [&](const Profiler& p) { return !p.argv.empty() && p.name.find(only) == std::string::npos; });
  for (int round = 0; round < rounds; ++round) {
    for (size_t k = 0; k < profilers.size(); ++k) {
      const Profiler& p = profilers[(k + round) % profilers.size()];
      runs[p.name].push_back(run_once(p, workload, round + 1));
    }
    std::fprintf(stderr, "round %d/%d done\n", round + 1, rounds);
  }
  std::vector<double> base;
  for (const Run& r : runs["alone"]) base.push_back(r.workload_s);
  double base_s = median(base);
  std::printf("%s workload, %d rounds, median wall time alone: %.3f s\n", scenario.c_str(), rounds, base_s);
  std::printf("tool CPU: life = all CPU / whole life; start-up = CPU s before the workload; steady = %% of a\n"
              "core while the workload ran; stop = CPU s after the stop signal. RSS: run = peak before the\n"
              "stop signal, life = peak over the whole life (ru_maxrss). Medians over rounds; RSS: the\n"
              "median and, after the slash, the largest.\n");
  std::printf("%-30s %9s %9s %9s %9s %9s %8s %11s %11s %8s\n", "configuration", "median s", "slowdown", "life %",
              "start-up", "steady %", "stop s", "RSS run", "RSS life", "BPF ns");
  for (const Profiler& p : profilers) {
    std::vector<double> w, cpu_share, bpf, startup, steady, stop;
    std::vector<double> rss, hwm;
    for (const Run& r : runs[p.name]) {
      w.push_back(r.workload_s);
      if (r.profiler_life_s > 0) cpu_share.push_back(100.0 * r.profiler_cpu_s / r.profiler_life_s);
      startup.push_back(r.startup_cpu_s);
      if (r.workload_s > 0) steady.push_back(100.0 * r.steady_cpu_s / r.workload_s);
      stop.push_back(r.stop_cpu_s);
      rss.push_back(r.profiler_maxrss_kb / 1024.0);
      hwm.push_back(r.steady_hwm_kb / 1024.0);
      if (r.bpf_ns > 0) bpf.push_back(r.bpf_ns);
    }
    double m = median(w);
    std::printf("%-30s %9.3f %8.2f%%", p.name.c_str(), m, 100.0 * (m / base_s - 1));
    if (p.argv.empty()) {
      std::printf("\n");
      continue;
    }
    std::printf(" %8.2f%% %9.3f %8.2f%% %9.3f %5.1f/%5.1f %5.1f/%5.1f", median(cpu_share), median(startup),
                median(steady), median(stop), median(hwm), *std::max_element(hwm.begin(), hwm.end()), median(rss),
                *std::max_element(rss.begin(), rss.end()));
    if (bpf.empty())
      std::printf(" %8s\n", "-");
    else
      std::printf(" %8.0f\n", median(bpf));
  }
  // Two views less moved by the VM's noise than the median wall time: the
  // best round of each (interference only ever slows a run down, so the
  // fastest of several is the closest to the tool's own cost), and the
  // workload's own CPU time (what sampling interrupts, BPF programs and a
  // tool's cache traffic cost it; not the time it waited for a CPU).
  std::vector<double> base_cpu;
  for (const Run& r : runs["alone"]) base_cpu.push_back(r.workload_cpu_s);
  double best_alone = *std::min_element(base.begin(), base.end());
  std::printf("best round's slowdown (fastest run against the fastest alone) and the workload's CPU time (median):\n");
  for (const Profiler& p : profilers) {
    std::vector<double> w, cpu;
    for (const Run& r : runs[p.name]) {
      w.push_back(r.workload_s);
      cpu.push_back(r.workload_cpu_s);
    }
    std::printf("  %-28s best %+6.2f%%   workload CPU %7.3f s (%+6.2f%%)\n", p.name.c_str(),
                100.0 * (*std::min_element(w.begin(), w.end()) / best_alone - 1), median(cpu),
                100.0 * (median(cpu) / median(base_cpu) - 1));
  }
  std::printf("peak RSS over the whole life, MB, round by round:\n");
  for (const Profiler& p : profilers) {
    if (p.argv.empty()) continue;
    std::printf("  %-28s", p.name.c_str());
    for (const Run& r : runs[p.name]) std::printf(" %5.1f", r.profiler_maxrss_kb / 1024.0);
    std::printf("\n");
  }
  print_paired(profilers, runs, "perf",
               "against perf at the same rate, paired by round (slowdown difference in points of the "
               "workload's time alone; negative: stackwatch slowed it less):");
  print_paired(profilers, runs, "sampling floor",
               "above the sampling floor at the same rate (the timer interrupts alone, no stacks), paired by "
               "round, in points:");
  print_paired(profilers, runs, "perf",
               "the workload's CPU time against perf's at the same rate, paired by round (points of its CPU "
               "time alone; negative: it used less under stackwatch):",
               &Run::workload_cpu_s);
  return 0;
}
