// Kallsyms and the perf-PID.map JIT format on fixture text, and kernel
// symbolization through Symbolizer with a fake kallsyms file.
#include <gtest/gtest.h>

#include <linux/bpf.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "recording/error.h"
#include "symbolizer/perf_map.h"
#include "symbolizer/symbolizer.h"
#include "test_support.h"

namespace stackwatch::symbolizer {
namespace {

TEST(Kallsyms, KeepsOnlyTextSymbolsWithModules) {
  auto k = Kallsyms::load(testing::fixture_src("kallsyms.txt"));
  EXPECT_TRUE(k.has_addresses());
  EXPECT_EQ(k.size(), 9u);  // 12 lines, 2 data symbols and 1 garbage line dropped
  const KernelSymbol* s = k.find(0xffffffff81003010);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->name, "do_syscall_64");
  EXPECT_EQ(s->module, "");
  // The call padding before do_syscall_64 is a boundary of its own (not the
  // end of the data symbol's predecessor), under one shared name.
  s = k.find(0xffffffff81002ff4);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->name, "__pfx");
  // The data symbol at ...81002000 is not a function: the text before it wins.
  s = k.find(0xffffffff81002010);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->name, "early_setup_idt");
  s = k.find(0xffffffff81002fef);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->name, "early_setup_idt");
  s = k.find(0xffffffff81003400);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->name, "weak_text_symbol");
  s = k.find(0xffffffffc0a01804);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->name, "ext4_sync_file");
  EXPECT_EQ(s->module, "ext4");
  s = k.find(0xffffffffc0b00020);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->name, "nf_hook_slow");
  EXPECT_EQ(s->module, "nf_tables");
  EXPECT_EQ(k.find(0xffffffff80000000), nullptr);  // before the first symbol
  EXPECT_EQ(k.find(0xffffffffc0000000), nullptr);  // far past vmlinux's last text symbol
}

TEST(Kallsyms, HiddenAddressesFindNothing) {
  auto k = Kallsyms::load(testing::fixture_src("kallsyms_hidden.txt"));
  EXPECT_FALSE(k.has_addresses());
  EXPECT_EQ(k.find(0xffffffff81000000), nullptr);
}

TEST(Kallsyms, MissingFileIsAnError) {
  EXPECT_THROW(Kallsyms::load("/nonexistent/kallsyms"), Error);
}

// Module extents from /proc/modules: a module's symbols end where it does.
TEST(Kallsyms, ModuleExtentsBoundTheirSymbols) {
  auto k = Kallsyms::load(testing::fixture_src("kallsyms.txt"));
  // Without extents the nearest symbol names anything within 1 MiB.
  ASSERT_NE(k.find(0xffffffffc0a02010), nullptr);
  EXPECT_EQ(k.find(0xffffffffc0a02010)->name, "ext4_sync_file");
  k.set_module_extents(
      "ext4 4096 2 - Live 0xffffffffc0a01000\n"
      "nf_tables 64 0 - Live 0xffffffffc0b00000 (E)\n"
      "not_loaded_here 100 0 - Live 0xffffffffc0d00000\n"
      "garbage\n");
  ASSERT_NE(k.find(0xffffffffc0a01804), nullptr);
  EXPECT_EQ(k.find(0xffffffffc0a01804)->name, "ext4_sync_file");
  EXPECT_EQ(k.find(0xffffffffc0a02010), nullptr);  // past ext4's 4 KiB
  ASSERT_NE(k.find(0xffffffffc0b0003f), nullptr);
  EXPECT_EQ(k.find(0xffffffffc0b0003f)->name, "nf_hook_slow");
  EXPECT_EQ(k.find(0xffffffffc0b00040), nullptr);
  // vmlinux is not bounded by them.
  ASSERT_NE(k.find(0xffffffff81003010), nullptr);
}

namespace fs = std::filesystem;

// A scratch directory with a fake kallsyms, modules list and boot id.
class KallsymsCache : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kallsyms-cache-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ifstream in(testing::fixture_src("kallsyms.txt"));
    std::stringstream text;
    text << in.rdbuf();
    // A BPF program among the modules: its symbol is not cached.
    write("kallsyms", text.str() + "ffffffffc0b01000 t bpf_prog_6deef7357e7b4530_handler\t[bpf]\n");
    write("modules", "ext4 4096 2 - Live 0xffffffffc0a01000\nnf_tables 64 0 - Live 0xffffffffc0b00000\n");
    write("boot_id", "3f6a1c2e-1111-2222-3333-444455556666\n");
    sources_.kallsyms = (dir_ / "kallsyms").string();
    sources_.modules = (dir_ / "modules").string();
    sources_.boot_id = (dir_ / "boot_id").string();
    sources_.cache_dir = (dir_ / "cache").string();
    sources_.bpf_programs = false;  // the machine's own programs would land among the fake modules
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  fs::path cache_file() const { return dir_ / "cache" / "kallsyms-3f6a1c2e-1111-2222-3333-444455556666.bin"; }

  fs::path dir_;
  KallsymsSources sources_;
};

TEST_F(KallsymsCache, SecondLoadComesFromThePrivateCacheWithTheSameAnswers) {
  Kallsyms first = Kallsyms::load_cached(sources_);
  EXPECT_FALSE(first.from_cache());
  ASSERT_TRUE(fs::exists(cache_file()));
  struct stat st{};
  ASSERT_EQ(stat(cache_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((dir_ / "cache").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_NE(first.find(0xffffffffc0b01010), nullptr);
  EXPECT_EQ(first.find(0xffffffffc0b01010)->name, "bpf_prog_6deef7357e7b4530_handler");

  // The kallsyms file is gone: only the cache can answer now.
  fs::remove(dir_ / "kallsyms");
  Kallsyms second = Kallsyms::load_cached(sources_);
  EXPECT_TRUE(second.from_cache());
  EXPECT_TRUE(second.has_addresses());
  for (uint64_t a : {0xffffffff81003010ull, 0xffffffff81002ff4ull, 0xffffffff81002010ull, 0xffffffffc0a01804ull,
                     0xffffffffc0b00020ull, 0xffffffff81000010ull}) {
    const KernelSymbol* x = first.find(a);
    const KernelSymbol* y = second.find(a);
    ASSERT_NE(x, nullptr) << std::hex << a;
    ASSERT_NE(y, nullptr) << std::hex << a;
    EXPECT_EQ(x->name, y->name) << std::hex << a;
    EXPECT_EQ(x->module, y->module) << std::hex << a;
    EXPECT_EQ(x->address, y->address) << std::hex << a;
  }
  EXPECT_EQ(second.size(), first.size() - 1);  // the BPF program's symbol
  // Its address is unknown, not nf_hook_slow's (nf_tables ends at +64).
  EXPECT_EQ(second.find(0xffffffffc0b01010), nullptr);
  EXPECT_EQ(second.find(0xffffffffc0a02010), nullptr);
}

TEST_F(KallsymsCache, AnotherModuleSetOrBootIsNotServedFromIt) {
  Kallsyms::load_cached(sources_);
  fs::remove(dir_ / "kallsyms");
  write("modules", "ext4 4096 2 - Live 0xffffffffc0a01000\n");  // nf_tables unloaded
  EXPECT_THROW(Kallsyms::load_cached(sources_), Error);  // had to read kallsyms again
  write("modules", "ext4 4096 2 - Live 0xffffffffc0a01000\nnf_tables 64 0 - Live 0xffffffffc0b00000\n");
  EXPECT_TRUE(Kallsyms::load_cached(sources_).from_cache());
  write("boot_id", "99999999-1111-2222-3333-444455556666\n");
  EXPECT_THROW(Kallsyms::load_cached(sources_), Error);
}

TEST_F(KallsymsCache, AFileOthersCanReadOrADamagedOneIsNotUsed) {
  Kallsyms::load_cached(sources_);
  ASSERT_EQ(chmod(cache_file().c_str(), 0644), 0);
  Kallsyms k = Kallsyms::load_cached(sources_);
  EXPECT_FALSE(k.from_cache());  // read again, and the cache written afresh (0600)
  EXPECT_TRUE(Kallsyms::load_cached(sources_).from_cache());

  // Truncated: refused whole.
  fs::resize_file(cache_file(), fs::file_size(cache_file()) - 3);
  EXPECT_FALSE(Kallsyms::load_cached(sources_).from_cache());
  // Garbage of the right size with the right header is refused by its bounds.
  std::string bytes;
  {
    std::ifstream in(cache_file(), std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    bytes = s.str();
  }
  for (size_t i = 64; i < bytes.size(); ++i) bytes[i] = static_cast<char>(0xff);
  {
    std::ofstream out(cache_file(), std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  ASSERT_EQ(chmod(cache_file().c_str(), 0600), 0);
  EXPECT_FALSE(Kallsyms::load_cached(sources_).from_cache());

  // A cache directory others can write to is not used (nor written).
  fs::remove_all(dir_ / "cache");
  fs::create_directories(dir_ / "cache");
  ASSERT_EQ(chmod((dir_ / "cache").c_str(), 0777), 0);
  Kallsyms::load_cached(sources_);
  EXPECT_FALSE(fs::exists(cache_file()));
}

// A cache hit lists the BPF programs loaded now from the kernel, so the
// tracing programs on top of a kernel stack keep their names (stackwatch
// strips them by name). Loads a two-instruction socket filter (root).
TEST_F(KallsymsCache, AHitNamesTheBpfProgramsLoadedNow) {
  if (geteuid() != 0) GTEST_SKIP() << "loading a BPF program needs root (CI runs as root)";
  sources_.bpf_programs = true;
  Kallsyms::load_cached(sources_);  // the cache, written before the program exists
  bpf_insn insns[2] = {};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = 0
  insns[0].dst_reg = BPF_REG_0;
  insns[1].code = BPF_JMP | BPF_EXIT;
  const char license[] = "GPL";
  bpf_attr attr{};
  attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  attr.insns = reinterpret_cast<uint64_t>(insns);
  attr.insn_cnt = 2;
  attr.license = reinterpret_cast<uint64_t>(license);
  std::strncpy(attr.prog_name, "sw_test_prog", sizeof attr.prog_name - 1);
  int fd = static_cast<int>(syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof attr));
  ASSERT_GE(fd, 0) << std::strerror(errno);
  uint64_t ksym = 0;
  bpf_prog_info info{};
  info.nr_jited_ksyms = 1;
  info.jited_ksyms = reinterpret_cast<uint64_t>(&ksym);
  attr = {};
  attr.info.bpf_fd = static_cast<uint32_t>(fd);
  attr.info.info_len = sizeof info;
  attr.info.info = reinterpret_cast<uint64_t>(&info);
  ASSERT_EQ(syscall(__NR_bpf, BPF_OBJ_GET_INFO_BY_FD, &attr, sizeof attr), 0);
  ASSERT_NE(ksym, 0u) << "no JIT (net.core.bpf_jit_enable=0?)";
  Kallsyms k = Kallsyms::load_cached(sources_);
  ::close(fd);
  EXPECT_TRUE(k.from_cache());
  const KernelSymbol* s = k.find(ksym + 4);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->name.starts_with("bpf_prog_")) << s->name;
  EXPECT_TRUE(s->name.ends_with("_sw_test_prog")) << s->name;
  EXPECT_EQ(s->module, "bpf");
}

// The table is served from the cache file, neither copied to the heap nor
// mapped, on the load that writes the cache and on the ones that read it: a
// recording holds the symbols its lookups named, not the table (3.4 MB on a
// 6.18 kernel; mapped, a few dozen lookups made most of it resident). Would
// fail if either load kept a copy or a mapping of the file.
TEST_F(KallsymsCache, TheTableStaysInTheCacheFileNeitherInTheHeapNorMapped) {
  std::string text;
  constexpr uint64_t kBase = 0xffffffff81000000ull;
  constexpr int kSymbols = 20000;
  for (int i = 0; i < kSymbols; ++i) {
    char line[96];
    std::snprintf(line, sizeof line, "%016llx t kernel_function_number_%d\n",
                  static_cast<unsigned long long>(kBase + 0x40ull * i), i);
    text += line;
  }
  write("kallsyms", text);
  write("modules", "");
  const size_t table_bytes = kSymbols * (16 + sizeof("kernel_function_number_00000"));
  for (bool expect_hit : {false, true}) {
    Kallsyms k = Kallsyms::load_cached(sources_);
    EXPECT_EQ(k.from_cache(), expect_hit);
    EXPECT_EQ(k.size(), static_cast<size_t>(kSymbols));
    for (int i = 0; i < kSymbols; i += 97) {
      const KernelSymbol* s = k.find(kBase + 0x40ull * i + 7);
      ASSERT_NE(s, nullptr) << i;
      EXPECT_EQ(s->name, "kernel_function_number_" + std::to_string(i));
      EXPECT_EQ(s->address, kBase + 0x40ull * i);
    }
    EXPECT_LT(k.memory_bytes(), table_bytes / 20) << "hit: " << expect_hit;
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) EXPECT_EQ(line.find(cache_file().string()), std::string::npos) << line;
  }
}

// Of several names at one address the first listed answers, from the cache
// too, where the run of names crosses the blocks a lookup reads.
TEST_F(KallsymsCache, TheFirstOfSeveralNamesAtOneAddressAnswersAcrossBlocks) {
  std::string text;
  constexpr uint64_t kBase = 0xffffffff81000000ull;
  const size_t shared_from = Kallsyms::kCacheBlock - 5, shared_to = 2 * Kallsyms::kCacheBlock + 5;
  for (size_t i = 0; i < 3 * Kallsyms::kCacheBlock; ++i) {
    uint64_t address = kBase + 0x40ull * (i < shared_from ? i : i < shared_to ? shared_from : i);
    char line[96];
    std::snprintf(line, sizeof line, "%016llx t f%zu\n", static_cast<unsigned long long>(address), i);
    text += line;
  }
  write("kallsyms", text);
  write("modules", "");
  for (bool expect_hit : {false, true}) {
    Kallsyms k = Kallsyms::load_cached(sources_);
    EXPECT_EQ(k.from_cache(), expect_hit);
    const KernelSymbol* s = k.find(kBase + 0x40ull * shared_from + 3);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->name, "f" + std::to_string(shared_from));
    s = k.find(kBase + 0x40ull * shared_to + 1);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->name, "f" + std::to_string(shared_to));
    s = k.find(kBase + 0x40ull * (shared_from - 1));
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->name, "f" + std::to_string(shared_from - 1));
    EXPECT_EQ(k.find(kBase - 1), nullptr);
  }
}

// Entries of the cache are checked as lookups use them: one whose
// name offset points past the names (a damaged file) names nothing, and the
// others still answer.
TEST_F(KallsymsCache, ADamagedEntryInTheCacheNamesNothing) {
  Kallsyms::load_cached(sources_);
  std::string bytes;
  {
    std::ifstream in(cache_file(), std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    bytes = s.str();
  }
  // do_syscall_64's entry: its address, then its name offset (4 bytes).
  const uint64_t address = 0xffffffff81003000ull;
  size_t at = bytes.find(std::string(reinterpret_cast<const char*>(&address), sizeof address));
  ASSERT_NE(at, std::string::npos);
  std::memset(bytes.data() + at + 8, 0xff, 4);
  {
    std::ofstream out(cache_file(), std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  Kallsyms k = Kallsyms::load_cached(sources_);
  ASSERT_TRUE(k.from_cache());
  EXPECT_EQ(k.find(address + 0x10), nullptr);
  ASSERT_NE(k.find(0xffffffff81001010), nullptr);
  EXPECT_EQ(k.find(0xffffffff81001010)->name, "early_setup_idt");
}

TEST_F(KallsymsCache, NoCacheDirectoryMeansNoCache) {
  sources_.cache_dir = "";
  EXPECT_FALSE(Kallsyms::load_cached(sources_).from_cache());
  EXPECT_FALSE(Kallsyms::load_cached(sources_).from_cache());
  EXPECT_FALSE(fs::exists(dir_ / "cache"));
}

TEST(SymbolizeKernel, NamesFunctionAndModule) {
  Options o;
  o.kallsyms_path = testing::fixture_src("kallsyms.txt");
  o.kallsyms_cache_dir = "";
  Symbolizer sym(o);
  auto frames = sym.symbolize_kernel(0xffffffffc0a01010);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "ext4_file_write_iter");
  EXPECT_EQ(frames[0].module, "ext4");
  EXPECT_TRUE(frames[0].kernel);
  EXPECT_EQ(frames[0].address, 0xffffffffc0a01010u);
  frames = sym.symbolize_kernel(0xffffffff81000010);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].module, "[kernel]");
  EXPECT_EQ(frames[0].function, "_stext");  // the first of the names at one address
}

TEST(SymbolizeKernel, UnknownCarriesReasonNotBareAddress) {
  Options o;
  o.kallsyms_path = testing::fixture_src("kallsyms_hidden.txt");
  o.kallsyms_cache_dir = "";
  Symbolizer sym(o);
  auto frames = sym.symbolize_kernel(0xffffffff81000010);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "");
  EXPECT_NE(frames[0].unknown_reason.find("kptr_restrict"), std::string::npos);
  EXPECT_EQ(frames[0].display_name(), "[kernel]+0xffffffff81000010");
  o.kallsyms_path = "/nonexistent/kallsyms";
  Symbolizer missing(o);
  frames = missing.symbolize_kernel(0xffffffff81000010);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(frames[0].unknown_reason.find("/nonexistent/kallsyms"), std::string::npos);
}

TEST(PerfMap, ParsesAndFindsJitSymbols) {
  auto map = PerfMap::parse(
      "7f0000001000 40 LazyCompile:~handler app.js:10\n"
      "0x7f0000001040 20 Builtin:ArgumentsAdaptor\n"
      "garbage\n"
      "7f0000001000 10 LazyCompile:*handler app.js:10\n");
  const JitSymbol* s = map.find(0x7f0000001008);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->name, "LazyCompile:*handler app.js:10");  // the later entry wins
  s = map.find(0x7f0000001020);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->name, "LazyCompile:~handler app.js:10");
  s = map.find(0x7f000000105f);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->name, "Builtin:ArgumentsAdaptor");
  EXPECT_EQ(map.find(0x7f0000001060), nullptr);
  EXPECT_EQ(map.find(0x7f0000000fff), nullptr);
}

}  // namespace
}  // namespace stackwatch::symbolizer
