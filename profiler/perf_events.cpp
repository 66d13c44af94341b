// Sampling perf events (see perf_events.h).
#include "profiler/perf_events.h"

#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace stackwatch::profiler {

std::vector<int> parse_cpu_list(const std::string& text) {
  std::vector<int> cpus;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    if (part.empty() || part == "\n") continue;
    try {
      size_t dash = part.find('-');
      int lo = std::stoi(part.substr(0, dash));
      int hi = dash == std::string::npos ? lo : std::stoi(part.substr(dash + 1));
      for (int c = lo; c <= hi && c - lo < 65536; ++c) cpus.push_back(c);
    } catch (...) {
      // A malformed part is skipped: the caller falls back if nothing parses.
    }
  }
  return cpus;
}

std::vector<int> online_cpus() {
  std::ifstream in("/sys/devices/system/cpu/online");
  std::string text;
  std::getline(in, text);
  auto cpus = parse_cpu_list(text);
  if (cpus.empty()) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long i = 0; i < n; ++i) cpus.push_back(static_cast<int>(i));
  }
  return cpus;
}

unsigned max_sample_rate() {
  std::ifstream in("/proc/sys/kernel/perf_event_max_sample_rate");
  unsigned v = 0;
  in >> v;
  return v;
}

static int open_event(uint32_t type, uint64_t config, unsigned hz, int cpu) {
  perf_event_attr attr{};
  attr.size = sizeof(attr);
  attr.type = type;
  attr.config = config;
  attr.freq = 1;
  attr.sample_freq = hz;
  return static_cast<int>(syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
}

SamplingEvents open_sampling_events(unsigned hz) {
  SamplingEvents ev;
  ev.cpus = online_cpus();
  // Decide the event on the first CPU; all CPUs use the same one so counts
  // are comparable.
  uint32_t type = PERF_TYPE_HARDWARE;
  uint64_t config = PERF_COUNT_HW_CPU_CYCLES;
  ev.event_name = "cycles";
  int fd = open_event(type, config, hz, ev.cpus.front());
  if (fd < 0 && (errno == ENOENT || errno == EOPNOTSUPP || errno == ENODEV || errno == EINVAL)) {
    type = PERF_TYPE_SOFTWARE;
    config = PERF_COUNT_SW_CPU_CLOCK;
    ev.event_name = "cpu-clock";
    fd = open_event(type, config, hz, ev.cpus.front());
  }
  if (fd < 0) throw_bpf_error("cannot open a sampling perf event on CPU " + std::to_string(ev.cpus.front()), errno);
  ev.fds.emplace_back(fd);
  for (size_t i = 1; i < ev.cpus.size(); ++i) {
    fd = open_event(type, config, hz, ev.cpus[i]);
    if (fd < 0) throw_bpf_error("cannot open a " + ev.event_name + " perf event on CPU " + std::to_string(ev.cpus[i]), errno);
    ev.fds.emplace_back(fd);
  }
  return ev;
}

}  // namespace stackwatch::profiler
