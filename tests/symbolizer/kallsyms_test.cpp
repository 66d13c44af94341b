// Kallsyms and the perf-PID.map JIT format on fixture text, and kernel
// symbolization through Symbolizer with a fake kallsyms file.
#include <gtest/gtest.h>

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

TEST(SymbolizeKernel, NamesFunctionAndModule) {
  Options o;
  o.kallsyms_path = testing::fixture_src("kallsyms.txt");
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
