// The module cache: LRU eviction at its bound, lookup by every key of a
// module, and sharing one parsed module between processes mapping one file.
#include <gtest/gtest.h>

#include "symbolizer/module_cache.h"
#include "symbolizer/symbolizer.h"
#include "test_support.h"

namespace stackwatch::symbolizer {
namespace {

std::shared_ptr<Module> load(const std::string& name) {
  return Module::load(ElfFile::open_path(testing::fixture_bin(name)), "/nonexistent");
}

TEST(ModuleCache, EvictsLeastRecentlyUsed) {
  ModuleCache cache(2);
  auto a = load("symfix_pie"), b = load("symfix_nopie"), c = load("symfix_lto");
  cache.insert(a, {"f:a", "b:aa"});
  cache.insert(b, {"f:b"});
  EXPECT_EQ(cache.find("b:aa"), a);  // a is now the most recently used
  cache.insert(c, {"f:c"});          // evicts b
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.find("f:b"), nullptr);
  EXPECT_EQ(cache.find("f:a"), a);
  EXPECT_EQ(cache.find("f:c"), c);
  cache.add_key(c, "f:c2");
  EXPECT_EQ(cache.find("f:c2"), c);
  cache.insert(b, {"f:b"});  // evicts a (c was used last), with both its keys
  EXPECT_EQ(cache.find("f:a"), nullptr);
  EXPECT_EQ(cache.find("b:aa"), nullptr);
  EXPECT_EQ(cache.find("f:c2"), c);
}

TEST(ModuleCache, TwoProcessesOfOneBinaryShareItsModules) {
  testing::Child first({testing::fixture_bin("symfix_pie"), "--wait"});
  testing::Child second({testing::fixture_bin("symfix_pie"), "--wait"});
  unsigned long long a1 = 0, a2 = 0, unused = 0;
  ASSERT_EQ(std::sscanf(first.read_line().c_str(), "ready %llx %llx", &a1, &unused), 2);
  ASSERT_EQ(std::sscanf(second.read_line().c_str(), "ready %llx %llx", &a2, &unused), 2);
  Options o;
  o.debug_root = "/nonexistent";
  Symbolizer sym(o);
  ASSERT_TRUE(sym.remember_process(first.pid()));
  ASSERT_TRUE(sym.remember_process(second.pid()));
  EXPECT_EQ(sym.symbolize_user(first.pid(), a1, false).back().function, "outer_entry");
  EXPECT_EQ(sym.cached_modules(), 1u);
  EXPECT_EQ(sym.symbolize_user(second.pid(), a2, false).back().function, "outer_entry");
  EXPECT_EQ(sym.cached_modules(), 1u);  // parsed once, though ASLR put it elsewhere
}

TEST(ModuleCache, BoundHoldsThroughTheSymbolizer) {
  Options o;
  o.debug_root = "/nonexistent";
  o.max_cached_modules = 2;
  Symbolizer sym(o);
  for (const char* name : {"symfix_pie", "symfix_nopie", "symfix_lto", "libsymfix_shared.so"})
    sym.symbolize_file(testing::fixture_bin(name), 0x1000);
  EXPECT_EQ(sym.cached_modules(), 2u);
  // An evicted module is parsed again when needed, with the same answer.
  auto fn = testing::elf_symbol(testing::fixture_bin("symfix_pie"), "outer_entry");
  EXPECT_EQ(sym.symbolize_file(testing::fixture_bin("symfix_pie"), fn.vaddr).back().function, "outer_entry");
}

}  // namespace
}  // namespace stackwatch::symbolizer
