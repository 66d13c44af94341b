// Unwinds real stacks captured by the fixture (tests/fixtures/unwinder) built
// without frame pointers, with them, non-PIE and with .debug_frame only, on
// the main thread, on a second thread and through a signal handler, and
// checks the exact chain of functions and that the stack is complete. Also:
// no CFI gives "no unwind info" and no invented frame; the rbp fallback;
// truncated copies; deleted binaries through map_files; one parse per module.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <ucontext.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include <gtest/gtest.h>

#include "tests/unwinder/fixture_process.h"
#include "tests/unwinder/frame_names.h"
#include "unwinder/elf_file.h"
#include "unwinder/module_cache.h"
#include "unwinder/module_cfi.h"
#include "unwinder/unwinder.h"

namespace stackwatch::unwinder {
namespace {

using testing::Capture;
using testing::FixtureProcess;
using testing::FrameName;
using testing::FrameNamer;

std::string basename_of(const std::string& path) { return path.substr(path.rfind('/') + 1); }

// Expected chain, innermost first. "exe:f" / "lib:f": a frame of function f in
// the fixture's executable / shared library; "libc+": one or more frames in
// libc.so.6 (stripped: their names are not asserted).
bool matches(const std::vector<FrameName>& frames, const std::vector<std::string>& pattern,
             const std::string& exe, const std::string& lib) {
  size_t i = 0;
  for (const std::string& token : pattern) {
    if (token == "libc+") {
      if (i >= frames.size() || frames[i].module != "libc.so.6") return false;
      while (i < frames.size() && frames[i].module == "libc.so.6") ++i;
      continue;
    }
    size_t colon = token.find(':');
    std::string module = token.substr(0, colon) == "exe" ? exe : lib;
    if (i >= frames.size() || frames[i].module != module || frames[i].function != token.substr(colon + 1)) {
      return false;
    }
    ++i;
  }
  return i == frames.size();
}

struct Unwound {
  UnwindResult result;
  std::vector<FrameName> frames;
};

Unwound unwind_fixture(Unwinder& unwinder, const FixtureProcess& fixture) {
  const Capture& c = fixture.capture();
  Unwound out;
  out.result = unwinder.unwind(static_cast<uint32_t>(fixture.pid()), c.maps, c.regs, c.stack);
  out.frames = FrameNamer(c.maps).names(out.result.ips);
  return out;
}

const std::vector<std::string> kMainChain = {
    "exe:capture_bottom", "exe:after_sort_2", "exe:after_sort_1", "exe:compare_ints", "libc+",
    "lib:lib_inner",      "lib:lib_outer",    "exe:level2",       "exe:level1",       "exe:main",
    "libc+",              "exe:_start"};

void expect_main_chain(const std::string& exe, Options options = {}) {
  FixtureProcess fixture(exe, "main");
  Unwinder unwinder(options);
  Unwound u = unwind_fixture(unwinder, fixture);
  std::string lib = "lib" + basename_of(exe) + "_lib.so";
  EXPECT_TRUE(u.result.complete()) << u.result.reason_text() << testing::describe(u.frames);
  EXPECT_TRUE(matches(u.frames, kMainChain, basename_of(exe), lib)) << testing::describe(u.frames);
  ASSERT_FALSE(u.result.ips.empty());
  EXPECT_EQ(u.result.ips[0], fixture.capture().regs.ip);
  EXPECT_EQ(unwinder.counters().frame_pointer_frames, 0u);
  EXPECT_EQ(fixture.finish(), 0);
}

TEST(Unwinder, CompleteChainWithoutFramePointers) { expect_main_chain(UNW_FIXTURE_NOFP); }

TEST(Unwinder, CompleteChainWithEagerTables) {
  Options options;
  options.lazy_cfi = false;
  expect_main_chain(UNW_FIXTURE_NOFP, options);
}

TEST(Unwinder, SameChainWithFramePointers) { expect_main_chain(UNW_FIXTURE_FP); }

TEST(Unwinder, CompleteChainInNonPieExecutable) { expect_main_chain(UNW_FIXTURE_NOPIE); }

TEST(Unwinder, CompleteChainFromDebugFrameOnly) {
  // The fixture really has no .eh_frame rows for its own functions.
  auto file = ElfFile::from_fd(open(UNW_FIXTURE_DEBUGFRAME, O_RDONLY | O_CLOEXEC));
  ASSERT_NE(file, nullptr);
  auto module = ModuleCfi::build(*file, "");
  EXPECT_TRUE(module->used_debug_frame());
  expect_main_chain(UNW_FIXTURE_DEBUGFRAME);
}

// The frame-pointer chain of a capture, as a frame-pointer-only unwinder
// would walk it: proves the no-frame-pointer fixture needs CFI.
std::vector<uint64_t> frame_pointer_walk(const Capture& c) {
  std::vector<uint64_t> ips = {c.regs.ip};
  uint64_t bp = c.regs.bp;
  auto read = [&](uint64_t address, uint64_t& value) {
    if (address < c.regs.sp || address + 8 > c.regs.sp + c.stack.size()) return false;
    std::memcpy(&value, c.stack.data() + (address - c.regs.sp), 8);
    return true;
  };
  uint64_t saved = 0, ra = 0;
  while (ips.size() < 64 && read(bp, saved) && read(bp + 8, ra) && ra != 0) {
    ips.push_back(ra);
    if (saved <= bp) break;
    bp = saved;
  }
  return ips;
}

size_t count_named(const std::vector<FrameName>& frames, const std::string& function) {
  return std::count_if(frames.begin(), frames.end(), [&](const FrameName& f) { return f.function == function; });
}

TEST(Unwinder, FixturesDifferInFramePointers) {
  FixtureProcess nofp(UNW_FIXTURE_NOFP, "main");
  FixtureProcess fp(UNW_FIXTURE_FP, "main");
  auto nofp_names = FrameNamer(nofp.capture().maps).names(frame_pointer_walk(nofp.capture()));
  auto fp_names = FrameNamer(fp.capture().maps).names(frame_pointer_walk(fp.capture()));
  // With frame pointers the rbp chain reaches main through our own frames
  // (it may stop in libc); without them it does not.
  EXPECT_EQ(count_named(fp_names, "after_sort_2"), 1u) << testing::describe(fp_names);
  EXPECT_EQ(count_named(nofp_names, "after_sort_2"), 0u) << testing::describe(nofp_names);
}

TEST(Unwinder, SecondThreadEndsAtThreadStart) {
  FixtureProcess fixture(UNW_FIXTURE_NOFP, "thread");
  Unwinder unwinder;
  Unwound u = unwind_fixture(unwinder, fixture);
  std::vector<std::string> chain = {"exe:capture_bottom", "exe:after_sort_2", "exe:after_sort_1",
                                    "exe:compare_ints",   "libc+",            "lib:lib_inner",
                                    "lib:lib_outer",      "exe:level2",       "exe:level1",
                                    "exe:thread_main",    "libc+"};
  EXPECT_TRUE(u.result.complete()) << u.result.reason_text() << testing::describe(u.frames);
  EXPECT_TRUE(matches(u.frames, chain, "unw_fixture_nofp", "libunw_fixture_nofp_lib.so"))
      << testing::describe(u.frames);
  // With libc6-dbg's symbols, the outermost frames are glibc's thread start.
  if (u.frames.size() >= 2 && !u.frames.back().function.empty()) {
    EXPECT_EQ(u.frames.back().function, "__clone3") << testing::describe(u.frames);
    EXPECT_EQ(u.frames[u.frames.size() - 2].function, "start_thread") << testing::describe(u.frames);
  }
}

TEST(Unwinder, ThroughSignalTrampoline) {
  FixtureProcess fixture(UNW_FIXTURE_NOFP, "signal");
  Unwinder unwinder;
  Unwound u = unwind_fixture(unwinder, fixture);
  std::vector<std::string> chain = {"exe:capture_bottom", "exe:after_sort_2", "exe:on_signal", "libc+",
                                    "exe:after_sort_1",   "exe:compare_ints", "libc+",         "lib:lib_inner",
                                    "lib:lib_outer",      "exe:level2",       "exe:level1",    "exe:main",
                                    "libc+",              "exe:_start"};
  EXPECT_TRUE(u.result.complete()) << u.result.reason_text() << testing::describe(u.frames);
  EXPECT_TRUE(matches(u.frames, chain, "unw_fixture_nofp", "libunw_fixture_nofp_lib.so"))
      << testing::describe(u.frames);
}

TEST(Unwinder, TruncatedCopyIsIncompletePrefix) {
  FixtureProcess fixture(UNW_FIXTURE_NOFP, "main");
  Unwinder unwinder;
  Unwound full = unwind_fixture(unwinder, fixture);
  ASSERT_TRUE(full.result.complete());
  const Capture& c = fixture.capture();
  // Only the innermost frames' part of the stack: the walk must stop where
  // the copy ends, with a prefix of the full chain.
  std::span<const uint8_t> head(c.stack.data(), 64);
  UnwindResult cut = unwinder.unwind(static_cast<uint32_t>(fixture.pid()), c.maps, c.regs, head);
  EXPECT_FALSE(cut.complete());
  EXPECT_EQ(cut.reason, IncompleteReason::kReadOutsideStack);
  EXPECT_STREQ(cut.reason_text(), "read outside the copied stack");
  ASSERT_GE(cut.ips.size(), 1u);
  ASSERT_LT(cut.ips.size(), full.result.ips.size());
  EXPECT_TRUE(std::equal(cut.ips.begin(), cut.ips.end(), full.result.ips.begin()));
  EXPECT_EQ(unwinder.counters().incomplete[static_cast<size_t>(IncompleteReason::kReadOutsideStack)], 1u);
  EXPECT_EQ(unwinder.counters().complete, 1u);
}


// stack_bytes_read is what StackCopies tells BPF to copy of a thread: the
// copy cut there unwinds to the same complete stack, and 8 bytes less does
// not; above it lies what no frame reads (on a second thread its thread
// block and TLS, on the main thread its arguments and environment).
TEST(Unwinder, StackBytesReadIsAllACompleteStackNeeds) {
  for (const char* mode : {"main", "thread"}) {
    SCOPED_TRACE(mode);
    FixtureProcess fixture(UNW_FIXTURE_NOFP, mode);
    Unwinder unwinder;
    Unwound full = unwind_fixture(unwinder, fixture);
    ASSERT_TRUE(full.result.complete()) << full.result.reason_text();
    const Capture& c = fixture.capture();
    uint64_t used = full.result.stack_bytes_read;
    ASSERT_GT(used, 0u);
    ASSERT_LE(used, c.stack.size());
    EXPECT_LT(used + 512, c.stack.size()) << "the copy holds more above the outermost frame than it needs";
    std::span<const uint8_t> cut(c.stack.data(), used);
    UnwindResult same = unwinder.unwind(static_cast<uint32_t>(fixture.pid()), c.maps, c.regs, cut);
    EXPECT_TRUE(same.complete()) << same.reason_text();
    EXPECT_EQ(same.ips, full.result.ips);
    EXPECT_EQ(same.stack_bytes_read, used);
    UnwindResult shorter =
        unwinder.unwind(static_cast<uint32_t>(fixture.pid()), c.maps, c.regs, cut.first(used - 8));
    EXPECT_FALSE(shorter.complete());
    EXPECT_EQ(shorter.reason, IncompleteReason::kReadOutsideStack);
  }
}
TEST(Unwinder, ModulesParsedOncePerFileAcrossProcesses) {
  Unwinder unwinder;
  FixtureProcess first(UNW_FIXTURE_NOFP, "main");
  ASSERT_TRUE(unwind_fixture(unwinder, first).result.complete());
  uint64_t built = unwinder.counters().modules_built;
  EXPECT_EQ(built, 3u);  // executable, its library, libc
  FixtureProcess second(UNW_FIXTURE_NOFP, "main");
  ASSERT_NE(first.pid(), second.pid());
  ASSERT_TRUE(unwind_fixture(unwinder, second).result.complete());
  EXPECT_EQ(unwinder.counters().modules_built, built);
  EXPECT_GE(unwinder.counters().module_cache_hits, 3u);
}

// The slot of the stack copy holding value (first above sp), or npos.
size_t slot_of(const std::vector<uint8_t>& stack, uint64_t value) {
  for (size_t off = 0; off + 8 <= stack.size(); off += 8) {
    uint64_t word;
    std::memcpy(&word, stack.data() + off, 8);
    if (word == value) return off;
  }
  return std::string::npos;
}

TEST(Unwinder, UnmappedReturnAddressIsDroppedNotReported) {
  FixtureProcess fixture(UNW_FIXTURE_NOFP, "main");
  Unwinder unwinder;
  Unwound full = unwind_fixture(unwinder, fixture);
  ASSERT_TRUE(full.result.complete());
  Capture c = fixture.capture();
  // Overwrite after_sort_2's return address into after_sort_1 (frame 2).
  size_t slot = slot_of(c.stack, full.result.ips[2]);
  ASSERT_NE(slot, std::string::npos);
  uint64_t nowhere = 0x10;
  std::memcpy(c.stack.data() + slot, &nowhere, 8);
  UnwindResult r = unwinder.unwind(static_cast<uint32_t>(fixture.pid()), c.maps, c.regs, c.stack);
  EXPECT_EQ(r.reason, IncompleteReason::kNotMapped);
  EXPECT_EQ(r.ips, (std::vector<uint64_t>{full.result.ips[0], full.result.ips[1]}));
}

TEST(Unwinder, CorruptStacksTerminateWithMappedFramesOnly) {
  FixtureProcess fixture(UNW_FIXTURE_NOFP, "main");
  const Capture& c = fixture.capture();
  Options options;
  options.max_depth = 64;
  Unwinder unwinder(options);
  std::mt19937_64 rng(42);
  std::vector<uint64_t> code_addresses;
  Unwound full = unwind_fixture(unwinder, fixture);
  code_addresses = full.result.ips;
  UnwindResult r;
  for (int round = 0; round < 3000; ++round) {
    std::vector<uint8_t> stack = c.stack;
    // Overwrite some words with random values, code addresses or stack addresses.
    for (int k = 0; k < 1 + round % 16; ++k) {
      size_t slot = (rng() % (stack.size() / 8)) * 8;
      uint64_t value = 0;
      switch (rng() % 3) {
        case 0: value = rng(); break;
        case 1: value = code_addresses[rng() % code_addresses.size()] + rng() % 64; break;
        case 2: value = c.regs.sp + rng() % (stack.size() + 64); break;
      }
      std::memcpy(stack.data() + slot, &value, 8);
    }
    UserRegs regs = c.regs;
    if (round % 2 == 1) regs.ip = code_addresses[rng() % code_addresses.size()] + rng() % 64;
    if (round % 3 == 1) regs.bp = c.regs.sp + rng() % stack.size();
    unwinder.unwind(static_cast<uint32_t>(fixture.pid()), c.maps, regs, stack, r);
    ASSERT_GE(r.ips.size(), 1u);
    ASSERT_LE(r.ips.size(), options.max_depth);
    ASSERT_EQ(r.ips[0], regs.ip);
    for (size_t i = 1; i < r.ips.size(); ++i) {
      bool mapped = std::any_of(c.maps.begin(), c.maps.end(), [&](const symbolizer::Mapping& m) {
        return m.executable() && r.ips[i] - 1 >= m.start && r.ips[i] - 1 < m.end;
      });
      ASSERT_TRUE(mapped) << "round " << round << " frame " << i;
    }
  }
  EXPECT_EQ(unwinder.counters().stacks, 3001u);
}

// An executable anonymous page (JIT code): the address is mapped but has no CFI.
class UnwinderAnonymousCode : public ::testing::Test {
 protected:
  void SetUp() override {
    page_ = mmap(nullptr, kPage, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(page_, MAP_FAILED);
    std::memset(page_, 0xc3, kPage);  // ret
    std::ifstream in("/proc/self/maps");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    maps_ = symbolizer::parse_proc_maps(text);
  }
  void TearDown() override { munmap(page_, kPage); }
  uint64_t code() const { return reinterpret_cast<uint64_t>(page_) + 16; }

  static constexpr size_t kPage = 4096;
  void* page_ = nullptr;
  std::vector<symbolizer::Mapping> maps_;
};

TEST_F(UnwinderAnonymousCode, NoUnwindInfoAndNoInventedFrame) {
  Unwinder unwinder;
  uint64_t stack[8] = {code() + 1, code() + 2, 0, 0, 0, 0, 0, 0};  // plausible-looking garbage
  UserRegs regs;
  regs.ip = code();
  regs.sp = reinterpret_cast<uint64_t>(stack);
  regs.bp = 0;  // not a frame pointer
  UnwindResult r = unwinder.unwind(static_cast<uint32_t>(getpid()), maps_, regs,
                                   {reinterpret_cast<const uint8_t*>(stack), sizeof stack});
  EXPECT_FALSE(r.complete());
  EXPECT_EQ(r.reason, IncompleteReason::kNoUnwindInfo);
  EXPECT_STREQ(r.reason_text(), "no unwind info");
  EXPECT_EQ(r.ips, std::vector<uint64_t>{code()});
  EXPECT_EQ(unwinder.counters().incomplete[static_cast<size_t>(IncompleteReason::kNoUnwindInfo)], 1u);
}

TEST_F(UnwinderAnonymousCode, FramePointerFallbackOnlyWhereRbpIsAFrame) {
  // sp -> [junk][saved rbp = 0][return address into the page]; rbp = sp + 8.
  uint64_t stack[4] = {0x1234, 0, code() + 100, 0};
  UserRegs regs;
  regs.ip = code();
  regs.sp = reinterpret_cast<uint64_t>(stack);
  regs.bp = regs.sp + 8;
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(stack), sizeof stack);
  {
    Unwinder unwinder;
    UnwindResult r = unwinder.unwind(static_cast<uint32_t>(getpid()), maps_, regs, bytes);
    EXPECT_EQ(r.ips, (std::vector<uint64_t>{code(), code() + 100}));
    EXPECT_EQ(r.reason, IncompleteReason::kNoUnwindInfo);  // then rbp = 0: no frame
    EXPECT_EQ(unwinder.counters().frame_pointer_frames, 1u);
  }
  {
    Options options;
    options.frame_pointer_fallback = false;
    Unwinder unwinder(options);
    UnwindResult r = unwinder.unwind(static_cast<uint32_t>(getpid()), maps_, regs, bytes);
    EXPECT_EQ(r.ips, std::vector<uint64_t>{code()});
    EXPECT_EQ(unwinder.counters().frame_pointer_frames, 0u);
  }
  {
    // A return address outside every executable mapping is not a frame.
    uint64_t bad[4] = {0x1234, 0, 0x10, 0};
    UserRegs bad_regs = regs;
    bad_regs.sp = reinterpret_cast<uint64_t>(bad);
    bad_regs.bp = bad_regs.sp + 8;
    Unwinder unwinder;
    UnwindResult r = unwinder.unwind(static_cast<uint32_t>(getpid()), maps_, bad_regs,
                                     {reinterpret_cast<const uint8_t*>(bad), sizeof bad});
    EXPECT_EQ(r.ips, std::vector<uint64_t>{code()});
    EXPECT_EQ(r.reason, IncompleteReason::kNoUnwindInfo);
  }
}

TEST_F(UnwinderAnonymousCode, UnmappedIpIsNotMapped) {
  Unwinder unwinder;
  uint64_t stack[2] = {0, 0};
  UserRegs regs;
  regs.ip = 0x10;
  regs.sp = reinterpret_cast<uint64_t>(stack);
  UnwindResult r = unwinder.unwind(static_cast<uint32_t>(getpid()), maps_, regs,
                                   {reinterpret_cast<const uint8_t*>(stack), sizeof stack});
  EXPECT_EQ(r.reason, IncompleteReason::kNotMapped);
  EXPECT_EQ(r.ips, std::vector<uint64_t>{0x10});
}

TEST(Unwinder, DeletedExecutableThroughMapFiles) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("unw-deleted-" + std::to_string(getpid()));
  fs::create_directories(dir);
  fs::path copy = dir / "unw_fixture_nofp";
  fs::copy_file(UNW_FIXTURE_NOFP, copy, fs::copy_options::overwrite_existing);
  FixtureProcess fixture(copy.string(), "main");  // its library is found by RUNPATH
  fs::remove_all(dir);
  // The fixture's maps were captured before the unlink: rename the path as
  // the kernel shows it now.
  Capture c = fixture.capture();
  for (symbolizer::Mapping& m : c.maps) {
    if (m.path == copy.string()) m.path += " (deleted)";
  }
  bool privileged = false;
  for (const symbolizer::Mapping& m : c.maps) {
    if (m.path == copy.string() + " (deleted)") {
      char name[64];
      std::snprintf(name, sizeof name, "/proc/%d/map_files/%lx-%lx", fixture.pid(),
                    static_cast<unsigned long>(m.start), static_cast<unsigned long>(m.end));
      int probe = open(name, O_RDONLY);
      if (probe >= 0) {
        privileged = true;
        close(probe);
      }
      break;
    }
  }
  if (!privileged) GTEST_SKIP() << "opening /proc/PID/map_files needs CAP_SYS_ADMIN";
  Unwinder unwinder;
  UnwindResult r = unwinder.unwind(static_cast<uint32_t>(fixture.pid()), c.maps, c.regs, c.stack);
  EXPECT_TRUE(r.complete()) << r.reason_text();
  EXPECT_GE(r.ips.size(), 12u);
  EXPECT_EQ(unwinder.counters().module_failures, 0u);
}

// A profiling timer interrupts a clock_gettime loop; the first time it lands
// in the vDSO, the handler copies the interrupted registers and stack the way
// BPF would at a perf event. That stack must unwind through the vDSO's own
// CFI, libc and this test back to main.
struct VdsoSample {
  uint64_t vdso_start = 0, vdso_end = 0, stack_end = 0;
  volatile sig_atomic_t captured = 0;
  UserRegs regs;
  uint8_t stack[16 * 1024];
  size_t stack_size = 0;
};
VdsoSample g_vdso_sample;

void on_profiling_timer(int, siginfo_t*, void* context) {
  VdsoSample& s = g_vdso_sample;
  const mcontext_t& mc = static_cast<ucontext_t*>(context)->uc_mcontext;
  uint64_t ip = mc.gregs[REG_RIP];
  if (s.captured || ip < s.vdso_start || ip >= s.vdso_end) return;
  uint64_t sp = mc.gregs[REG_RSP];
  s.regs = UserRegs{ip,
                    sp,
                    static_cast<uint64_t>(mc.gregs[REG_RBP]),
                    static_cast<uint64_t>(mc.gregs[REG_RBX]),
                    static_cast<uint64_t>(mc.gregs[REG_R12]),
                    static_cast<uint64_t>(mc.gregs[REG_R13]),
                    static_cast<uint64_t>(mc.gregs[REG_R14]),
                    static_cast<uint64_t>(mc.gregs[REG_R15])};
  s.stack_size = std::min<uint64_t>(sizeof s.stack, s.stack_end - sp);
  std::memcpy(s.stack, reinterpret_cast<const void*>(sp), s.stack_size);
  s.captured = 1;
}

__attribute__((noinline)) void spin_in_clock_gettime() {
  // Bounded by CPU time: a 1 ms profiling timer fires ~1000 times a second of
  // this loop, most of which is spent in the vDSO.
  timespec ts;
  for (long i = 0; i < 2000000000L && !g_vdso_sample.captured; ++i) clock_gettime(CLOCK_MONOTONIC, &ts);
  __asm__ volatile("" ::: "memory");
}

TEST(Unwinder, SampleInsideTheVdso) {
  std::ifstream in("/proc/self/maps");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<symbolizer::Mapping> maps = symbolizer::parse_proc_maps(text);
  uint64_t here = reinterpret_cast<uint64_t>(__builtin_frame_address(0));
  for (const symbolizer::Mapping& m : maps) {
    if (m.path == "[vdso]") {
      g_vdso_sample.vdso_start = m.start;
      g_vdso_sample.vdso_end = m.end;
    }
    if (here >= m.start && here < m.end) g_vdso_sample.stack_end = m.end;
  }
  if (g_vdso_sample.vdso_start == 0) GTEST_SKIP() << "no [vdso] mapping";
  ASSERT_NE(g_vdso_sample.stack_end, 0u);

  struct sigaction action = {}, old_action = {};
  action.sa_sigaction = on_profiling_timer;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaction(SIGPROF, &action, &old_action);
  itimerval timer = {{0, 1000}, {0, 1000}}, stop = {};
  setitimer(ITIMER_PROF, &timer, nullptr);
  spin_in_clock_gettime();
  setitimer(ITIMER_PROF, &stop, nullptr);
  sigaction(SIGPROF, &old_action, nullptr);
  ASSERT_TRUE(g_vdso_sample.captured) << "no profiling tick landed in the vDSO";

  Unwinder unwinder;
  const VdsoSample& s = g_vdso_sample;
  UnwindResult r = unwinder.unwind(static_cast<uint32_t>(getpid()), maps, s.regs, {s.stack, s.stack_size});
  std::vector<FrameName> frames = FrameNamer(maps).names(r.ips);
  EXPECT_TRUE(r.complete()) << r.reason_text() << testing::describe(frames);
  ASSERT_GE(frames.size(), 4u);
  EXPECT_EQ(frames[0].module, "[vdso]");
  // Out of the vDSO (maybe through more of it) into libc's clock_gettime, then here.
  size_t i = 1;
  while (i < frames.size() && frames[i].module == "[vdso]") ++i;
  ASSERT_LT(i, frames.size());
  EXPECT_EQ(frames[i].module, "libc.so.6") << testing::describe(frames);
  EXPECT_EQ(count_named(frames, "_ZN10stackwatch8unwinder12_GLOBAL__N_121spin_in_clock_gettimeEv"), 1u)
      << testing::describe(frames);
  EXPECT_EQ(count_named(frames, "main"), 1u) << testing::describe(frames);
  EXPECT_EQ(frames.back().function, "_start") << testing::describe(frames);
}

TEST(UnwinderModuleCache, VdsoHasUnwindRows) {
  std::ifstream in("/proc/self/maps");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ModuleCache cache(8, "/proc", "", /*lazy=*/false);
  for (const symbolizer::Mapping& m : symbolizer::parse_proc_maps(text)) {
    if (m.path != "[vdso]") continue;
    auto module = cache.module_for(static_cast<uint32_t>(getpid()), m);
    ASSERT_NE(module, nullptr);
    EXPECT_GT(module->table().size(), 4u);
    ASSERT_TRUE(module->load_bias(m.start, m.file_offset).has_value());
    // Some row says what every function entry says: CFA = rsp + 8, return
    // address at CFA - 8.
    bool entry_row = false;
    for (const CfiRow& row : module->table().rows()) {
      entry_row |= row.cfa_rule == CfaRule::kRegOffset && row.cfa_reg == kDwarfRsp && row.cfa_offset == 8 &&
                   row.ra_rule == RegRule::kAtCfa && row.ra_offset == -8;
    }
    EXPECT_TRUE(entry_row);
    return;
  }
  GTEST_SKIP() << "no [vdso] mapping";
}

}  // namespace
}  // namespace stackwatch::unwinder
