// Unwinds the threads of a live process the way stackwatch will, but with
// ptrace standing in for BPF: stop each thread, take its registers and the
// top 16 KiB of its stack, let it go, unwind the copy. Prints the named
// stacks of the first round and, over all rounds, how many stacks were
// complete and why the others were not, plus the unwind cost.
// A development tool to check the unwinder on real programs (needs ptrace
// rights over the target). Usage: unwinder_live PID [ROUNDS] [INTERVAL_MS]
#include <dirent.h>
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "tests/unwinder/frame_names.h"
#include "unwinder/unwinder.h"

using namespace stackwatch;
using namespace stackwatch::unwinder;

namespace {

// What BPF copies by default.
constexpr size_t kStackCopyBytes = 16 * 1024;

struct ThreadSample {
  int tid = 0;
  UserRegs regs;
  std::vector<uint8_t> stack;
};

std::vector<int> threads_of(int pid) {
  std::vector<int> tids;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') tids.push_back(std::atoi(e->d_name));
    }
    closedir(d);
  }
  return tids;
}

bool sample_thread(int pid, int tid, const std::vector<symbolizer::Mapping>& maps, ThreadSample& out) {
  if (ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) return false;
  bool ok = false;
  int status = 0;
  if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) == 0 && waitpid(tid, &status, __WALL) == tid) {
    user_regs_struct r;
    if (ptrace(PTRACE_GETREGS, tid, nullptr, &r) == 0) {
      out.tid = tid;
      out.regs = UserRegs{r.rip, r.rsp, r.rbp, r.rbx, r.r12, r.r13, r.r14, r.r15};
      uint64_t end = r.rsp;
      for (const symbolizer::Mapping& m : maps) {
        if (r.rsp >= m.start && r.rsp < m.end) end = m.end;
      }
      size_t size = std::min<uint64_t>(kStackCopyBytes, end - r.rsp);
      out.stack.resize(size);
      std::string mem = "/proc/" + std::to_string(pid) + "/mem";
      int fd = open(mem.c_str(), O_RDONLY);
      ok = fd >= 0 && pread(fd, out.stack.data(), size, static_cast<off_t>(r.rsp)) == static_cast<ssize_t>(size);
      if (fd >= 0) close(fd);
    }
  }
  ptrace(PTRACE_DETACH, tid, nullptr, nullptr);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PID [ROUNDS] [INTERVAL_MS]\n", argv[0]);
    return 2;
  }
  int pid = std::atoi(argv[1]);
  int rounds = argc > 2 ? std::atoi(argv[2]) : 20;
  int interval_ms = argc > 3 ? std::atoi(argv[3]) : 50;
  Unwinder unwinder;
  double unwind_seconds = 0;
  size_t unwound = 0;
  for (int round = 0; round < rounds; ++round) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<symbolizer::Mapping> maps = symbolizer::parse_proc_maps(text);
    if (maps.empty()) break;
    for (int tid : threads_of(pid)) {
      ThreadSample sample;
      if (!sample_thread(pid, tid, maps, sample)) continue;
      auto start = std::chrono::steady_clock::now();
      UnwindResult result = unwinder.unwind(static_cast<uint32_t>(pid), maps, sample.regs, sample.stack);
      unwind_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      ++unwound;
      if (round == 0) {
        unwinder::testing::FrameNamer namer(maps);
        std::printf("tid %d: %zu frames, %s%s\n", tid, result.ips.size(),
                    result.complete() ? "complete" : result.reason_text(),
                    unwinder::testing::describe(namer.names(result.ips)).c_str());
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
  const UnwindCounters& c = unwinder.counters();
  std::printf("\n%lu stacks, %lu complete (%.1f%%), %lu frames, %lu by frame pointer\n", c.stacks, c.complete,
              c.stacks ? 100.0 * c.complete / c.stacks : 0.0, c.frames, c.frame_pointer_frames);
  for (size_t i = 1; i < c.incomplete.size(); ++i) {
    if (c.incomplete[i] != 0) {
      std::printf("  incomplete, %s: %lu\n", reason_name(static_cast<IncompleteReason>(i)), c.incomplete[i]);
    }
  }
  std::printf("modules compiled %lu, cache hits %lu, unreadable %lu; %.1f us/stack including cold\n",
              c.modules_built, c.module_cache_hits, c.module_failures,
              unwound ? unwind_seconds * 1e6 / unwound : 0.0);
  return 0;
}
