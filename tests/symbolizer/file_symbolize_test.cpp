// Symbolizing fixture ELF files by virtual address: inline chains with exact
// marker lines, demangled template names, PIE and non-PIE, debug info found
// through .gnu_debuglink and through a .build-id tree, a stripped library
// whose static function must stay unnamed, and an LTO binary; the batch call
// against one call per address.
#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <span>
#include <vector>

#include "recording/error.h"
#include "symbolizer/symbolizer.h"
#include "test_support.h"

namespace stackwatch::symbolizer {
namespace {

using testing::elf_symbol;
using testing::fixture_bin;
using testing::fixture_src;
using testing::marker_line;

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

// "name@line" per frame, innermost first.
std::string chain(const std::vector<Frame>& frames) {
  std::string out;
  for (const Frame& f : frames) {
    if (!out.empty()) out += " > ";
    out += f.function + "@" + std::to_string(f.line);
  }
  return out;
}

// Options that look for debug files only where the test says.
Options isolated(const std::string& debug_root = "/nonexistent") {
  Options o;
  o.debug_root = debug_root;
  return o;
}

class InlineFixture : public ::testing::TestWithParam<std::string> {};

// Every address of outer_entry is attributed to outer_entry, and the loop
// body holds the full chain inner_step > middle_step > outer_entry with the
// marker lines of the source.
void expect_inline_chain(Symbolizer& sym, const std::string& binary) {
  std::string src = fixture_src("inline_fixture.cpp");
  std::string expected = "inner_step@" + std::to_string(marker_line(src, "MARK:inner")) + " > middle_step@" +
                         std::to_string(marker_line(src, "MARK:middle")) + " > outer_entry@" +
                         std::to_string(marker_line(src, "MARK:outer"));
  auto fn = elf_symbol(fixture_bin("symfix_pie"), "outer_entry");  // same layout as the stripped copies
  if (binary.find("nopie") != std::string::npos) fn = elf_symbol(binary, "outer_entry");
  bool found = false;
  for (uint64_t a = fn.vaddr; a < fn.vaddr + fn.size; ++a) {
    auto frames = sym.symbolize_file(binary, a);
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames.back().function, "outer_entry") << hex(a);
    EXPECT_FALSE(frames.back().inlined);
    for (size_t i = 0; i + 1 < frames.size(); ++i) EXPECT_TRUE(frames[i].inlined) << hex(a);
    EXPECT_EQ(frames.back().file, fixture_src("inline_fixture.cpp")) << hex(a);
    if (chain(frames) == expected) found = true;
  }
  EXPECT_TRUE(found) << "no address of " << binary << " resolves to " << expected;
}

TEST(SymbolizeFile, InlineChainPie) {
  Symbolizer sym(isolated());
  expect_inline_chain(sym, fixture_bin("symfix_pie"));
}

TEST(SymbolizeFile, InlineChainNonPie) {
  Symbolizer sym(isolated());
  expect_inline_chain(sym, fixture_bin("symfix_nopie"));
}

TEST(SymbolizeFile, DebugInfoThroughGnuDebuglink) {
  Symbolizer sym(isolated());
  expect_inline_chain(sym, fixture_bin("symfix_debuglink"));
}

TEST(SymbolizeFile, DebugInfoThroughBuildIdTree) {
  Symbolizer sym(isolated(fixture_bin("debug-root")));
  expect_inline_chain(sym, fixture_bin("symfix_buildid"));
}

TEST(SymbolizeFile, WithoutItsDebugFileAStrippedBinaryHasNoLines) {
  // Same stripped binary, but the .build-id tree is not where we look: only
  // .dynsym is left, which does not name outer_entry (not exported).
  Symbolizer sym(isolated());
  auto fn = elf_symbol(fixture_bin("symfix_pie"), "outer_entry");
  auto frames = sym.symbolize_file(fixture_bin("symfix_buildid"), fn.vaddr + 1);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "");
  EXPECT_EQ(frames[0].file, "");
  EXPECT_FALSE(frames[0].unknown_reason.empty());
  EXPECT_EQ(frames[0].display_name(), "symfix_buildid+" + hex(frames[0].module_offset));
}

TEST(SymbolizeFile, DemanglesTemplateInNamespace) {
  Symbolizer sym(isolated());
  std::string bin = fixture_bin("symfix_pie");
  auto fn = elf_symbol(bin, "_ZNK8geometry6ScalerIlE5scaleEl");
  auto frames = sym.symbolize_file(bin, fn.vaddr);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "geometry::Scaler<long>::scale(long) const");
  EXPECT_EQ(frames[0].line, marker_line(fixture_src("inline_fixture.cpp"), "MARK:scale"));
  EXPECT_FALSE(frames[0].build_id.empty());
  Options raw = isolated();
  raw.demangle = false;
  Symbolizer mangled(raw);
  EXPECT_EQ(mangled.symbolize_file(bin, fn.vaddr)[0].function, "_ZNK8geometry6ScalerIlE5scaleEl");
}

// The symbol table's name for the function does not demangle (an alias in a
// malformed mangling): DWARF's linkage name does, and names it.
TEST(SymbolizeFile, AnUndemanglableSymbolGivesWayToDwarfsName) {
  Symbolizer sym(isolated());
  std::string bin = fixture_bin("symfix_malformed_alias");
  auto fn = elf_symbol(bin, "_ZN2nsL10aliased_fnEi");
  ASSERT_EQ(elf_symbol(bin, "_ZN3fooIS_XE").vaddr, fn.vaddr);
  auto frames = sym.symbolize_file(bin, fn.vaddr);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "ns::aliased_fn(int)");
  EXPECT_EQ(frames[0].line, marker_line(fixture_src("malformed_alias.cpp"), "MARK:aliased"));
}

TEST(SymbolizeFile, SharedLibraryFunction) {
  Symbolizer sym(isolated());
  std::string lib = fixture_bin("libsymfix_shared.so");
  auto fn = elf_symbol(lib, "shared_work");
  auto frames = sym.symbolize_file(lib, fn.vaddr + 2);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "shared_work");
  // module_offset is the file offset; lld put the code at p_vaddr != p_offset.
  auto seg = testing::exec_segment(lib);
  ASSERT_NE(seg.vaddr, seg.offset) << "fixture no longer exercises p_vaddr != p_offset";
  EXPECT_EQ(frames[0].module_offset, fn.vaddr + 2 - seg.vaddr + seg.offset);
}

TEST(SymbolizeFile, NoInlinesGivesOuterFunctionWithInnermostLine) {
  Options o = isolated();
  o.inlines = false;
  Symbolizer sym(o);
  Symbolizer full(isolated());
  std::string bin = fixture_bin("symfix_pie");
  auto fn = elf_symbol(bin, "outer_entry");
  for (uint64_t a = fn.vaddr; a < fn.vaddr + fn.size; ++a) {
    auto frames = sym.symbolize_file(bin, a);
    auto all = full.symbolize_file(bin, a);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].function, "outer_entry");
    EXPECT_EQ(frames[0].line, all.front().line);
  }
}

TEST(SymbolizeFile, StrippedLibraryReportsUnnamedFunctionNotItsNeighbour) {
  std::string full_lib = fixture_bin("libsymfix_stripped_lib.so");
  std::string stripped = fixture_bin("libsymfix_stripped_lib.stripped.so");
  auto first = elf_symbol(full_lib, "exported_first");
  auto hidden = elf_symbol(full_lib, "hidden_second");
  ASSERT_GT(hidden.vaddr, first.vaddr) << "fixture lost its layout: hidden_second must follow exported_first";
  // With symbols and DWARF, both are named. (A separate Symbolizer: both
  // files have one build-id, so one cache would treat them as one module.)
  EXPECT_EQ(Symbolizer(isolated()).symbolize_file(full_lib, hidden.vaddr + 4).back().function, "hidden_second");
  Symbolizer sym(isolated());
  // Stripped: the exported one is still named from .dynsym ...
  EXPECT_EQ(sym.symbolize_file(stripped, first.vaddr + 1).back().function, "exported_first");
  // ... the static one is unnamed, with .eh_frame's bounds of it in the reason.
  auto frames = sym.symbolize_file(stripped, hidden.vaddr + 4);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "");
  EXPECT_NE(frames[0].unknown_reason.find(".eh_frame"), std::string::npos) << frames[0].unknown_reason;
  EXPECT_NE(frames[0].unknown_reason.find(hex(hidden.vaddr) + "-"), std::string::npos) << frames[0].unknown_reason;
  EXPECT_EQ(frames[0].display_name(), "libsymfix_stripped_lib.stripped.so+" + hex(hidden.vaddr + 4));
}

TEST(SymbolizeFile, SizelessSymbolBoundedByEhFrame) {
  std::string full_lib = fixture_bin("libsymfix_stripped_lib.so");
  std::string stripped = fixture_bin("libsymfix_stripped_lib.stripped.so");
  auto sizeless = elf_symbol(full_lib, "sizeless_exported");
  auto after = elf_symbol(full_lib, "asm_static");
  ASSERT_EQ(sizeless.size, 0u) << "the fixture's symbol must have no size";
  ASSERT_GT(after.vaddr, sizeless.vaddr);
  Symbolizer sym(isolated());
  // The FDE covering the address starts at the sizeless symbol: it is named.
  auto frames = sym.symbolize_file(stripped, sizeless.vaddr + 4);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "sizeless_exported");
  // The next function has its own FDE: not sizeless_exported, unnamed.
  frames = sym.symbolize_file(stripped, after.vaddr + 4);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "");
  EXPECT_NE(frames[0].unknown_reason.find(hex(after.vaddr) + "-"), std::string::npos) << frames[0].unknown_reason;
}

TEST(SymbolizeFile, LtoInlineChainAcrossUnits) {
  Symbolizer sym(isolated());
  std::string bin = fixture_bin("symfix_lto");
  std::string leaf_src = fixture_src("lto_leaf.c");
  std::string expected = "lto_leaf@" + std::to_string(marker_line(leaf_src, "MARK:lto_leaf")) + " > lto_mid@" +
                         std::to_string(marker_line(leaf_src, "MARK:lto_mid")) + " > lto_outer@" +
                         std::to_string(marker_line(fixture_src("lto_main.c"), "MARK:lto_outer"));
  auto fn = elf_symbol(bin, "lto_outer");
  bool found = false;
  for (uint64_t a = fn.vaddr; a < fn.vaddr + fn.size; ++a) {
    auto frames = sym.symbolize_file(bin, a);
    EXPECT_EQ(frames.back().function, "lto_outer") << hex(a);
    if (chain(frames) == expected) {
      found = true;
      EXPECT_EQ(frames[0].file, leaf_src);
      EXPECT_EQ(frames[2].file, fixture_src("lto_main.c"));
    }
  }
  EXPECT_TRUE(found) << "no address of lto_outer resolves to " << expected;
}

TEST(SymbolizeFile, BadInputIsAnError) {
  Symbolizer sym(isolated());
  EXPECT_THROW(sym.symbolize_file("/nonexistent/binary", 0x1000), Error);
  EXPECT_THROW(sym.symbolize_file(fixture_src("maps.txt"), 0x1000), Error);
}

TEST(SymbolizeFile, AddressOutsideAnyFunctionIsUnknownWithOffset) {
  Symbolizer sym(isolated());
  auto frames = sym.symbolize_file(fixture_bin("symfix_pie"), 0x10);  // ELF header
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "");
  EXPECT_FALSE(frames[0].unknown_reason.empty());
  EXPECT_EQ(frames[0].module_offset, 0x10u);
}

// The batch call gives each address what one call per address gives.
TEST(SymbolizeFileBatch, SameFramesAsOneCallPerAddress) {
  std::string path = testing::fixture_bin("symfix_two_units");
  std::vector<uint64_t> addresses;
  for (const char* function : {"shared_work", "outer_entry", "main"}) {
    auto range = testing::elf_symbol(path, function);
    for (uint64_t addr = range.vaddr + range.size; addr-- > range.vaddr;) addresses.push_back(addr);  // descending
  }
  addresses.push_back(addresses.front());  // a repeat
  Symbolizer single, batch;
  std::vector<bool> seen(addresses.size());
  uint64_t previous = 0;
  batch.symbolize_file(path, std::span<const uint64_t>(addresses), [&](size_t i, std::span<const Frame> frames) {
    ASSERT_LT(i, addresses.size());
    EXPECT_FALSE(seen[i]);
    seen[i] = true;
    EXPECT_GE(addresses[i], previous);  // visited in address order
    previous = addresses[i];
    auto expected = single.symbolize_file(path, addresses[i]);
    ASSERT_EQ(frames.size(), expected.size());
    for (size_t k = 0; k < frames.size(); ++k) {
      EXPECT_EQ(frames[k].function, expected[k].function);
      EXPECT_EQ(frames[k].file, expected[k].file);
      EXPECT_EQ(frames[k].line, expected[k].line);
      EXPECT_EQ(frames[k].column, expected[k].column);
      EXPECT_EQ(frames[k].inlined, expected[k].inlined);
      EXPECT_EQ(frames[k].unknown_reason, expected[k].unknown_reason);
      EXPECT_EQ(frames[k].build_id, expected[k].build_id);
      EXPECT_EQ(frames[k].module_offset, expected[k].module_offset);
      EXPECT_EQ(frames[k].address, addresses[i]);
      EXPECT_EQ(frames[k].module, path);
    }
  });
  EXPECT_EQ(std::count(seen.begin(), seen.end(), true), static_cast<long>(addresses.size()));
}

}  // namespace
}  // namespace stackwatch::symbolizer
