// Validation of record options (see record_options.h).
#include "profiler/record_options.h"

#include <linux/capability.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "profiler/perf_events.h"
#include "recording/error.h"

namespace stackwatch::profiler {

// An interval shorter than this makes the drain and symbolization work per
// interval dominate; longer than an hour defeats "print as it happens".
static constexpr double kMinIntervalS = 0.1;
static constexpr double kMaxIntervalS = 3600;

static uint32_t map_size_for(unsigned hz, double interval_s, size_t cpus) {
  // Distinct stacks per interval are at most the samples per interval; keep
  // room for kernel and user stacks of each, with headroom, in a power of two.
  double samples = hz * interval_s * static_cast<double>(cpus) * 2.0;
  uint32_t n = 1024;
  while (n < samples && n < (1u << 18)) n <<= 1;
  return n;
}

void validate(RecordOptions& o) {
  if (o.hz == 0) throw Error("-F 0: the sampling frequency must be at least 1 Hz");
  unsigned max_hz = max_sample_rate();
  if (max_hz > 0 && o.hz > max_hz)
    throw Error("-F " + std::to_string(o.hz) + ": above the kernel's limit of " + std::to_string(max_hz) +
                " Hz (sysctl kernel.perf_event_max_sample_rate)");
  if (o.hz > 100000) throw Error("-F " + std::to_string(o.hz) + ": too high (at most 100000 Hz)");
  if (!(o.interval_s >= kMinIntervalS && o.interval_s <= kMaxIntervalS))
    throw Error("-i: the interval must be between 0.1 and 3600 seconds");
  if (!(o.duration_s >= 0) || !std::isfinite(o.duration_s)) throw Error("-d: the duration must be 0 or more seconds");
  if (!o.on_cpu && !o.off_cpu) throw Error("--on-cpu and --off-cpu together select nothing: give one or neither");
  if (int given = !o.pids.empty() + !o.command.empty() + !o.cgroup.empty(); given > 1)
    throw Error("give one of -p PID, -G CGROUP or -- COMMAND");
  // Allocator probes fire on every malloc of a process: only for chosen ones.
  if (o.memory && o.pids.empty() && o.command.empty())
    throw Error("--memory needs -p PID or -- COMMAND: allocator probes on every process would slow the machine");
  if (o.memory_rate > 0 && !o.memory) throw Error("--memory-rate goes with --memory");
  if (o.baseline_probes && (!o.probes || !o.detect))
    throw Error("--baseline-probes needs the localizer's probes: drop --no-probes / --no-detect");
  for (uint32_t pid : o.pids) {
    if (pid == 0) throw Error("-p 0: not a process id");
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      throw Error("-p " + std::to_string(pid) + ": no such process");
  }
  if (o.max_stacks == 0) o.max_stacks = map_size_for(o.hz, o.interval_s, online_cpus().size());
}

void check_privileges() {
  if (geteuid() == 0) return;
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &header, data) == 0) {
    auto has = [&](int cap) { return (data[cap / 32].effective >> (cap % 32)) & 1u; };
    // CAP_BPF (39) and CAP_PERFMON (38); CAP_SYS_ADMIN (21) covers both on older kernels.
    if ((has(39) && has(38)) || has(21)) return;
  }
  throw Error("stackwatch record needs root, or the capabilities CAP_BPF and CAP_PERFMON");
}

void prepare_output_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error("cannot create output directory " + dir + ": " + ec.message());
  if (!std::filesystem::is_directory(dir)) throw Error("output path " + dir + " is not a directory");
  // A random name created with O_EXCL (mkstemp): a symlink planted at a
  // predictable name cannot make root create or truncate another file.
  std::string probe = dir + "/.stackwatch-write-test.XXXXXX";
  int fd = mkstemp(probe.data());
  if (fd < 0) throw Error("cannot write to output directory " + dir + ": " + std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace stackwatch::profiler
