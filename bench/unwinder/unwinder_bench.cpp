// Cost of unwinding the fixture's captured stacks (no frame pointers, through
// its own library and libc): cold (a new Unwinder, so the CFI of the
// executable, its library and libc is compiled first) and warm (cached), in
// microseconds per stack and stacks per second, plus what that means at
// stackwatch's default 49 Hz. Usage: unwinder_bench [warm_iterations [ELF...]]
#include <fcntl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/unwinder/fixture_process.h"
#include "tests/unwinder/frame_names.h"
#include "unwinder/elf_file.h"
#include "unwinder/module_cfi.h"
#include "unwinder/unwinder.h"

using namespace stackwatch::unwinder;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void compile_cost(const char* path) {
  constexpr int kRounds = 5;
  auto start = Clock::now();
  size_t rows = 0, fdes = 0, unsupported = 0;
  for (int i = 0; i < kRounds; ++i) {
    auto file = ElfFile::from_fd(open(path, O_RDONLY | O_CLOEXEC));
    if (!file) {
      std::printf("  %s: cannot open\n", path);
      return;
    }
    auto module = ModuleCfi::build(*file, "");
    rows = module->table().size();
    fdes = module->stats().fdes;
    unsupported = 0;
    for (const CfiRow& row : module->table().rows()) {
      unsupported += row.cfa_rule == CfaRule::kUnsupported || row.ra_rule == RegRule::kUnsupported;
    }
  }
  double eager_ms = seconds_since(start) * 1e3 / kRounds;
  start = Clock::now();
  for (int i = 0; i < kRounds; ++i) {
    ModuleCfi::build_lazy(ElfFile::from_fd(open(path, O_RDONLY | O_CLOEXEC), false), "");
  }
  double lazy_ms = seconds_since(start) * 1e3 / kRounds;
  std::printf("  %s\n    %6zu FDEs -> %6zu rows (%7.1f KiB, %zu unsupported): eager %7.2f ms, lazy set-up %5.2f ms\n",
              path, fdes, rows, rows * sizeof(CfiRow) / 1024.0, unsupported, eager_ms, lazy_ms);
}

}  // namespace

int main(int argc, char** argv) {
  long warm_iterations = argc > 1 ? std::atol(argv[1]) : 200000;
  std::printf("CFI compilation (once per module, shared by all processes):\n");
  compile_cost(UNW_FIXTURE_NOFP);
  compile_cost("/lib/x86_64-linux-gnu/libc.so.6");
  compile_cost("/lib/x86_64-linux-gnu/libstdc++.so.6");
  for (int i = 2; i < argc; ++i) compile_cost(argv[i]);

  for (const char* mode : {"main", "thread", "signal"}) {
    testing::FixtureProcess fixture(UNW_FIXTURE_NOFP, mode);
    const testing::Capture& c = fixture.capture();
    uint32_t pid = static_cast<uint32_t>(fixture.pid());

    // Cold: new unwinder each time (opens exe, library, libc; compiles the
    // FDEs on the stack when lazy, all of them when eager).
    constexpr int kColdRounds = 20;
    UnwindResult result;
    double cold_us[2];
    for (bool lazy : {true, false}) {
      Options options;
      options.lazy_cfi = lazy;
      auto start = Clock::now();
      for (int i = 0; i < kColdRounds; ++i) {
        Unwinder unwinder(options);
        unwinder.unwind(pid, c.maps, c.regs, c.stack, result);
      }
      cold_us[lazy] = seconds_since(start) * 1e6 / kColdRounds;
    }

    // Warm (lazy, the default): one unwinder, the same maps vector (the per-pid state is kept).
    Unwinder unwinder;
    unwinder.unwind(pid, c.maps, c.regs, c.stack, result);
    auto start = Clock::now();
    for (long i = 0; i < warm_iterations; ++i) unwinder.unwind(pid, c.maps, c.regs, c.stack, result);
    double warm_s = seconds_since(start);
    double warm_us = warm_s * 1e6 / warm_iterations;

    // Warm, but the caller passes a fresh copy of the maps each time.
    std::vector<stackwatch::symbolizer::Mapping> maps_copy;
    constexpr long kCopyIterations = 20000;
    start = Clock::now();
    for (long i = 0; i < kCopyIterations; ++i) {
      maps_copy = c.maps;
      unwinder.unwind(pid, maps_copy, c.regs, c.stack, result);
    }
    double copy_us = seconds_since(start) * 1e6 / kCopyIterations;

    testing::FrameNamer namer(c.maps);
    std::printf("\nstack '%s': %zu frames, %s (%zu stack bytes copied, %zu mappings)%s\n", mode,
                result.ips.size(), result.complete() ? "complete" : result.reason_text(), c.stack.size(),
                c.maps.size(), testing::describe(namer.names(result.ips)).c_str());
    std::printf("  cold (new cache): %9.1f us/stack lazy, %9.1f us/stack eager\n", cold_us[1], cold_us[0]);
    std::printf("  warm:             %9.3f us/stack  %10.0f stacks/s  %6.1f ns/frame\n", warm_us,
                1e6 / warm_us, warm_us * 1e3 / result.ips.size());
    std::printf("  warm, maps vector copied per call (copy included): %.3f us/stack\n", copy_us);
    // stackwatch's default: 49 Hz per CPU, on- and off-CPU stacks.
    for (int cpus : {2, 16, 64}) {
      double per_second = 49.0 * cpus * 2;
      std::printf("  at 49 Hz on %2d CPUs (on+off, %5.0f stacks/s): %.4f%% of one core\n", cpus, per_second,
                  per_second * warm_us / 1e6 * 100);
    }
    fixture.finish();
  }
  return 0;
}
