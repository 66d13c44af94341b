// Detector and localizer memory on a churning machine: the heap held by the
// IntervalMonitor + IntervalLogWriter pair that `record` runs, and by the
// live localizer's history of 21 intervals (full StackSamples as they came,
// against profiler/baseline_history.h), after each block of intervals of a
// soak-like churn: every interval ~1,000 short-lived processes (new pids;
// comms from a few dozen binaries plus some never seen again), 3 stacks each
// of ~20 symbolized frames (module paths, build-ids, source files), beside
// a steady service. Heap is malloc's in-use bytes (mallinfo2) held by the
// structure. Prints figures; not part of ctest.
//
//   bench_detector_memory [--intervals N] [--processes P]
#include <malloc.h>

#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "localize/interval_log.h"
#include "localize/interval_monitor.h"
#ifndef BENCH_BEFORE
#include "profiler/baseline_history.h"
#endif

using namespace stackwatch;

namespace {

size_t heap_in_use() { return mallinfo2().uordblks; }

Frame make_frame(const std::string& function, const std::string& module, uint64_t offset, uint64_t base,
                 bool kernel) {
  Frame f;
  f.function = function;
  f.module = module;
  f.module_offset = offset;
  f.address = base + offset;
  f.kernel = kernel;
  if (!kernel) {
    f.build_id = "3f2c9a0d6b1e4f5a8c7d2e1f0a9b8c7d6e5f4a3b";
    f.file = "/build/glibc-2.36/" + function + ".c";
    f.line = static_cast<uint32_t>(offset % 900);
  }
  return f;
}

class Churn {
 public:
  explicit Churn(int processes) : processes_(processes) {
    for (int i = 0; i < 400; ++i) kernel_.push_back("kfunc_" + std::to_string(i));
  }

  Interval next() {
    Interval in;
    in.index = index_;
    in.start_unix_ns = int64_t{1'700'000'000} * 1'000'000'000 + static_cast<int64_t>(index_) * 5'000'000'000;
    in.end_unix_ns = in.start_unix_ns + 5'000'000'000;
    std::poisson_distribution<int> steady(200);
    std::uniform_int_distribution<int> binary(0, 59), kpath(0, 399), tiny(1, 3);
    // The steady service.
    for (int k = 0; k < 20; ++k) in.stacks.push_back(stack(100, "service", "/opt/svc/bin/service", 0x5555'0000'0000,
                                                          k, steady(rng_), k % 4 == 0));
    for (int p = 0; p < processes_; ++p) {
      uint32_t tgid = next_pid_++;
      // Mostly a few dozen binaries; one in ten a name never seen again.
      std::string comm = p % 10 == 0 ? "tmp-" + std::to_string(tgid) : "bin" + std::to_string(binary(rng_));
      std::string path = "/usr/lib/churn/copies/" + comm;
      uint64_t base = 0x5500'0000'0000 + uint64_t{tgid} * 0x10'0000;
      for (int s = 0; s < 3; ++s) in.stacks.push_back(stack(tgid, comm, path, base, kpath(rng_), tiny(rng_), s == 2));
    }
    ++index_;
    return in;
  }

 private:
  StackSample stack(uint32_t tgid, const std::string& comm, const std::string& path, uint64_t base, int variant,
                    int count, bool off) {
    StackSample s;
    s.tgid = s.tid = tgid;
    s.process_name = s.thread_name = comm;
    s.kind = off ? StackKind::kOffCpu : StackKind::kOnCpu;
    s.count = static_cast<uint64_t>(count);
    if (off) {
      s.off_ns = s.count * 1'000'000;
      s.off_state = OffCpuState::kInterruptible;
    }
    // Innermost first: 8 kernel frames (a path among 400), libc, ld.so, the binary.
    for (int k = 0; k < 8; ++k)
      s.frames.push_back(make_frame(kernel_[(variant * 7 + k * 13) % 400], "[kernel]", 0, 0xffffffff81000000ULL + k,
                                    true));
    const std::string libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    const std::string ld = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
    for (int k = 0; k < 4; ++k) s.frames.push_back(make_frame("libc_fn" + std::to_string(k), libc, 0x20000 + k * 64, base + 0x1000000, false));
    for (int k = 0; k < 3; ++k) s.frames.push_back(make_frame("_dl_fn" + std::to_string(k), ld, 0x3000 + k * 64, base + 0x2000000, false));
    for (int k = 0; k < 5; ++k)
      s.frames.push_back(make_frame("app_fn" + std::to_string((variant + k) % 9), path, 0x1000 + k * 64, base, false));
    return s;
  }

  int processes_;
  uint64_t index_ = 0;
  uint32_t next_pid_ = 1000;
  std::mt19937_64 rng_{5};
  std::vector<std::string> kernel_;
};

double mb(size_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

}  // namespace

int main(int argc, char** argv) {
  int intervals = 120, processes = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--intervals") == 0) intervals = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--processes") == 0) processes = std::atoi(argv[i + 1]);
  }
  const std::string log_path = std::filesystem::temp_directory_path() / "bench-detector-memory.jsonl";
  std::printf("churn: %d intervals, %d new processes x 3 stacks x 20 frames per interval\n", intervals, processes);

  // Each structure fed alone, so the heap delta is its own.
  {
    Churn churn(processes);
    size_t before = heap_in_use();
    auto* monitor = new localize::IntervalMonitor();
    auto* log = new localize::IntervalLogWriter(log_path);
    for (int i = 0; i < intervals; ++i) {
      {
        Interval in = churn.next();
        localize::IntervalRecord record;
        monitor->observe(in, {{"cpu_util", 0.5}}, &record);
        log->append(record);
      }
      if ((i + 1) % 24 == 0)
        std::printf("  interval %4d: detector + interval log %.1f MB (%zu series)\n", i + 1,
                    mb(heap_in_use() - before), monitor->series_count());
    }
    delete log;
    delete monitor;
    std::filesystem::remove(log_path);
  }
  {
    Churn churn(processes);
    size_t before = heap_in_use();
    auto* history = new std::deque<std::vector<StackSample>>();
    for (int i = 0; i < intervals; ++i) {
      history->push_back(churn.next().stacks);
      while (history->size() > 21) history->pop_front();
      if ((i + 1) % 24 == 0)
        std::printf("  interval %4d: localizer history, full StackSamples: %.1f MB\n", i + 1, mb(heap_in_use() - before));
    }
    delete history;
  }
#ifndef BENCH_BEFORE
  {
    Churn churn(processes);
    size_t before = heap_in_use();
    auto* history = new profiler::BaselineHistory(21);
    for (int i = 0; i < intervals; ++i) {
      {
        Interval in = churn.next();
        history->add(in.index, 5.0, false, in.stacks);
      }
      if ((i + 1) % 24 == 0)
        std::printf("  interval %4d: localizer history, compact: %.1f MB (estimate %.1f MB; %zu strings, %zu frames, "
                    "%zu stacks)\n",
                    i + 1, mb(heap_in_use() - before), mb(history->memory_bytes()), history->string_count(),
                    history->frame_count(), history->stack_count());
    }
    delete history;
  }
#endif
  return 0;
}
