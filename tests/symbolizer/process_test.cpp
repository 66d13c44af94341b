// Symbolizing running processes by pid: a fixture (PIE and non-PIE, with an
// lld-linked shared library) before and after it exits, deleted and replaced
// binaries, the vDSO, a JIT perf map, a late dlopen, and unknown addresses.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "symbolizer/process_snapshot.h"
#include "symbolizer/symbolizer.h"
#include "test_support.h"

namespace stackwatch::symbolizer {
namespace {

namespace fs = std::filesystem;
using testing::Child;
using testing::elf_symbol;
using testing::fixture_bin;

Options isolated() {
  Options o;
  o.debug_root = "/nonexistent";
  return o;
}

std::string describe(const std::vector<Frame>& frames) {
  std::string out;
  for (const Frame& f : frames) out += f.function + "@" + f.file + ":" + std::to_string(f.line) + (f.inlined ? "(i) " : " ");
  return out;
}

struct Ready {
  uint64_t outer_entry = 0;
  uint64_t shared_work = 0;
};

Ready wait_ready(Child& child) {
  std::string line = child.read_line();
  Ready r;
  unsigned long long a = 0, b = 0;
  if (std::sscanf(line.c_str(), "ready %llx %llx", &a, &b) != 2) ADD_FAILURE() << "fixture said: " << line;
  r.outer_entry = a;
  r.shared_work = b;
  return r;
}

// Per address of outer_entry and shared_work: the frames by pid, with their
// file offsets, as the same lookups in the files give them.
struct Expected {
  std::vector<std::pair<uint64_t, std::vector<Frame>>> by_runtime_address;
};

Expected expected_frames(const std::string& binary, const Ready& ready) {
  Symbolizer files(isolated());
  Expected e;
  auto outer = elf_symbol(binary, "outer_entry");
  for (uint64_t a = outer.vaddr; a < outer.vaddr + outer.size; ++a)
    e.by_runtime_address.emplace_back(ready.outer_entry + (a - outer.vaddr), files.symbolize_file(binary, a));
  std::string lib = fixture_bin("libsymfix_shared.so");
  auto shared = elf_symbol(lib, "shared_work");
  for (uint64_t a = shared.vaddr; a < shared.vaddr + shared.size; ++a)
    e.by_runtime_address.emplace_back(ready.shared_work + (a - shared.vaddr), files.symbolize_file(lib, a));
  return e;
}

void expect_same(Symbolizer& sym, uint32_t pid, const Expected& expected, const std::string& when) {
  for (const auto& [address, want] : expected.by_runtime_address) {
    auto got = sym.symbolize_user(pid, address, false);
    ASSERT_EQ(describe(got), describe(want)) << when << " at 0x" << std::hex << address;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].address, address);
      EXPECT_EQ(got[i].module_offset, want[i].module_offset) << when;  // file offsets agree
      EXPECT_EQ(got[i].build_id, want[i].build_id);
      EXPECT_TRUE(got[i].unknown_reason.empty()) << got[i].unknown_reason;
    }
  }
}

void check_running_fixture(const std::string& binary) {
  Child child({binary, "--wait"});
  Ready ready = wait_ready(child);
  ASSERT_NE(ready.outer_entry, 0u);
  Expected expected = expected_frames(binary, ready);
  ASSERT_GT(expected.by_runtime_address.size(), 20u);
  EXPECT_EQ(expected.by_runtime_address.front().second.back().function, "outer_entry");
  EXPECT_EQ(expected.by_runtime_address.back().second.back().function, "shared_work");

  Symbolizer sym(isolated());
  ASSERT_TRUE(sym.remember_process(child.pid()));
  EXPECT_TRUE(sym.knows_process(child.pid()));
  expect_same(sym, child.pid(), expected, "while running");
  auto frames = sym.symbolize_user(child.pid(), ready.shared_work, false);
  EXPECT_EQ(fs::path(frames.back().module).filename(), "libsymfix_shared.so");
  EXPECT_EQ(fs::path(sym.symbolize_user(child.pid(), ready.outer_entry, false).back().module), fs::path(binary));

  // A second Symbolizer that only remembered the process, then saw it exit
  // (killed and reaped), resolves the same, without having parsed anything
  // before the exit.
  Symbolizer late(isolated());
  ASSERT_TRUE(late.remember_process(child.pid()));
  uint32_t pid = child.pid();
  child.kill_and_reap();
  ASSERT_FALSE(fs::exists("/proc/" + std::to_string(pid) + "/maps"));
  expect_same(late, pid, expected, "after exit");
  expect_same(sym, pid, expected, "after exit (warm)");
}

TEST(SymbolizeProcess, PieFixtureWhileRunningAndAfterExit) { check_running_fixture(fixture_bin("symfix_pie")); }

TEST(SymbolizeProcess, NonPieFixtureWhileRunningAndAfterExit) {
  check_running_fixture(fixture_bin("symfix_nopie"));
}

TEST(SymbolizeProcess, ReturnAddressLooksUpTheCall) {
  Child child({fixture_bin("symfix_pie"), "--wait"});
  Ready ready = wait_ready(child);
  Symbolizer sym(isolated());
  ASSERT_TRUE(sym.remember_process(child.pid()));
  // One past shared_work's first byte, as a return address, is shared_work's
  // first byte; as a plain address it is the second.
  auto as_return = sym.symbolize_user(child.pid(), ready.shared_work + 1, true);
  auto first_byte = sym.symbolize_user(child.pid(), ready.shared_work, false);
  EXPECT_EQ(describe(as_return), describe(first_byte));
  EXPECT_EQ(as_return[0].address, ready.shared_work + 1);  // the frame keeps the sampled address
}

TEST(SymbolizeProcess, DeletedAndReplacedBinaries) {
  fs::path dir = fs::temp_directory_path() / ("symfix-" + std::to_string(getpid()));
  fs::create_directories(dir);
  fs::path deleted = dir / "deleted_fixture", replaced = dir / "replaced_fixture";
  fs::copy_file(fixture_bin("symfix_nopie"), deleted, fs::copy_options::overwrite_existing);
  fs::copy_file(fixture_bin("symfix_nopie"), replaced, fs::copy_options::overwrite_existing);
  Child a({deleted.string(), "--wait"});
  Child b({replaced.string(), "--wait"});
  Ready ra = wait_ready(a), rb = wait_ready(b);
  fs::remove(deleted);
  fs::remove(replaced);
  std::ofstream(replaced) << "not the binary any more";  // new inode at the same path
  Symbolizer sym(isolated());
  ASSERT_TRUE(sym.remember_process(a.pid()));
  ASSERT_TRUE(sym.remember_process(b.pid()));
  uint32_t pid_a = a.pid(), pid_b = b.pid();
  a.kill_and_reap();
  b.kill_and_reap();
  auto fa = sym.symbolize_user(pid_a, ra.outer_entry, false);
  auto fb = sym.symbolize_user(pid_b, rb.outer_entry, false);
  EXPECT_EQ(fa.back().module, deleted.string() + " (deleted)");
  if (geteuid() == 0) {
    // map_files (CAP_SYS_ADMIN) still reaches the mapped inode.
    EXPECT_EQ(fa.back().function, "outer_entry") << fa.back().unknown_reason;
    EXPECT_EQ(fb.back().function, "outer_entry") << fb.back().unknown_reason;
  } else {
    // Without map_files the old inode is out of reach (the new file at the
    // path is a different inode, and the kernel marks the mapping deleted).
    EXPECT_NE(fa.back().unknown_reason.find("map_files"), std::string::npos) << fa.back().unknown_reason;
    EXPECT_NE(fb.back().unknown_reason.find("map_files"), std::string::npos) << fb.back().unknown_reason;
    EXPECT_EQ(fb.back().function, "");
  }
  fs::remove_all(dir);
}

TEST(SymbolizeProcess, Vdso) {
  auto base = getauxval(AT_SYSINFO_EHDR);
  ASSERT_NE(base, 0u);
  // Write our own vDSO out so the test reads its symbols independently.
  std::string maps;
  {
    std::ifstream in("/proc/self/maps");
    std::stringstream s;
    s << in.rdbuf();
    maps = s.str();
  }
  uint64_t size = 0;
  for (const Mapping& m : parse_proc_maps(maps))
    if (m.path == "[vdso]") size = m.end - m.start;
  ASSERT_GT(size, 0u);
  fs::path image = fs::temp_directory_path() / ("vdso-" + std::to_string(getpid()) + ".so");
  std::ofstream(image, std::ios::binary).write(reinterpret_cast<const char*>(base), static_cast<std::streamsize>(size));
  auto fn = elf_symbol(image.string(), "__vdso_clock_gettime");
  auto seg = testing::exec_segment(image.string());
  fs::remove(image);
  uint64_t runtime = base + (fn.vaddr - seg.vaddr + seg.offset) + 2;

  Symbolizer sym(isolated());
  ASSERT_TRUE(sym.remember_process(getpid()));
  auto frames = sym.symbolize_user(getpid(), runtime, false);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].module, "[vdso]");
  EXPECT_EQ(frames[0].module_offset, runtime - base);
  // Two names for one function; which alias wins is llvm-symbolizer's rule
  // (the last in the table), so accept either, but nothing else.
  EXPECT_TRUE(frames[0].function == "clock_gettime" || frames[0].function == "__vdso_clock_gettime")
      << frames[0].function << " " << frames[0].unknown_reason;
}

// Every process of one kernel maps the same vDSO: its snapshots share one
// copy of the image (8 KiB each, of every process a churning machine
// starts, before).
TEST(SymbolizeProcess, SnapshotsShareOneVdsoImage) {
  Child other({"/bin/cat"});  // alive until its stdin closes
  FileRegistry files;
  Options o = isolated();
  auto ours = capture_process(static_cast<uint32_t>(getpid()), o, files);
  auto theirs = capture_process(static_cast<uint32_t>(other.pid()), o, files);
  ASSERT_TRUE(ours && theirs);
  ASSERT_NE(ours->vdso_image, nullptr);
  EXPECT_GT(ours->vdso_image->size(), 0u);
  EXPECT_EQ(ours->vdso_image.get(), theirs->vdso_image.get());
  auto base = getauxval(AT_SYSINFO_EHDR);
  ASSERT_NE(base, 0u);
  EXPECT_EQ(std::memcmp(ours->vdso_image->data(), reinterpret_cast<const void*>(base), ours->vdso_image->size()), 0);
  other.kill_and_reap();
}

TEST(SymbolizeProcess, JitPerfMap) {
  long page = sysconf(_SC_PAGESIZE);
  void* code = mmap(nullptr, page, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(code, MAP_FAILED);
  auto start = reinterpret_cast<uint64_t>(code);
  fs::path dir = fs::temp_directory_path() / ("symfix-jit-" + std::to_string(getpid()));
  fs::create_directories(dir);
  {
    std::ofstream map(dir / ("perf-" + std::to_string(getpid()) + ".map"));
    char line[128];
    std::snprintf(line, sizeof line, "%" PRIx64 " 40 JitCompiled:handle_request\n", start + 0x100);
    map << line;
  }
  Options o = isolated();
  o.perf_map_dir = dir.string();
  Symbolizer sym(o);
  ASSERT_TRUE(sym.remember_process(getpid()));
  auto frames = sym.symbolize_user(getpid(), start + 0x110, false);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "JitCompiled:handle_request");
  EXPECT_EQ(frames[0].module, "[jit]");
  EXPECT_EQ(frames[0].module_offset, 0x10u);
  // Outside the JIT entry: anonymous memory, unnamed, never a bare address.
  frames = sym.symbolize_user(getpid(), start + 0x10, false);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "");
  EXPECT_FALSE(frames[0].unknown_reason.empty());
  EXPECT_EQ(frames[0].display_name(), "[anon]+0x10");
  munmap(code, page);
  fs::remove_all(dir);
}

TEST(SymbolizeProcess, LibraryLoadedAfterTheSnapshot) {
  Symbolizer sym(isolated());
  ASSERT_TRUE(sym.remember_process(getpid()));
  void* handle = dlopen(fixture_bin("libsymfix_stripped_lib.so").c_str(), RTLD_NOW);
  ASSERT_NE(handle, nullptr) << dlerror();
  auto address = reinterpret_cast<uint64_t>(dlsym(handle, "exported_first"));
  ASSERT_NE(address, 0u);
  // The snapshot is re-read when it misses an address, at most every 200 ms.
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  auto frames = sym.symbolize_user(getpid(), address, false);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "exported_first") << frames[0].unknown_reason;
  dlclose(handle);
}

TEST(SymbolizeProcess, UnknownProcessAndUnmappedAddress) {
  Symbolizer sym(isolated());
  constexpr uint32_t kNoSuchPid = 0x7ffffff0;  // above pid_max's ceiling (4M)
  EXPECT_FALSE(sym.remember_process(kNoSuchPid));
  auto frames = sym.symbolize_user(kNoSuchPid, 0x401000, false);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_FALSE(frames[0].unknown_reason.empty());
  EXPECT_EQ(frames[0].display_name(), "[unknown]+0x401000");
  ASSERT_TRUE(sym.remember_process(getpid()));
  frames = sym.symbolize_user(getpid(), 0x10, false);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(frames[0].unknown_reason.find("no mapping"), std::string::npos);
  EXPECT_EQ(frames[0].display_name(), "[unknown]+0x10");
  sym.forget_process(getpid());
  EXPECT_FALSE(sym.knows_process(getpid()));
}

}  // namespace
}  // namespace stackwatch::symbolizer
