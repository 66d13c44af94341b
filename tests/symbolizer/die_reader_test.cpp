// UnitReader against libdw: an index whose units were listed and walked by
// UnitReader must answer every address exactly as one built through libdw
// alone (same function chains, node ids, names, call sites, lines), on
// DWARF 5 and 4, GCC and clang (indexed strings, addresses and range lists),
// LTO, compressed sections, and the large debug files of the machine when
// they are installed. And UnitReader must actually have been the one
// reading (else the comparison proves nothing).
#include <gtest/gtest.h>
#include <dwarf.h>
#include <gelf.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "symbolizer/dwarf_index.h"
#include "symbolizer/die_reader.h"
#include "symbolizer/elf_file.h"
#include "test_support.h"

namespace stackwatch::symbolizer {
namespace {

// [low, high) of the executable sections of an ELF file (its code).
std::vector<std::pair<uint64_t, uint64_t>> code_ranges(Elf* elf) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr) continue;
    if ((shdr.sh_flags & SHF_EXECINSTR) != 0 && shdr.sh_size > 0)
      out.emplace_back(shdr.sh_addr, shdr.sh_addr + shdr.sh_size);
  }
  return out;
}

// Compares the two indexes on every step-th address of the code. Returns
// how many addresses had a function.
size_t expect_same_answers(const std::string& what, Elf* code_elf, DwarfIndex& own, DwarfIndex& libdw, uint64_t step) {
  size_t named = 0, mismatches = 0;
  std::vector<uint32_t> own_chain, libdw_chain;
  for (auto [low, high] : code_ranges(code_elf)) {
    for (uint64_t a = low; a < high && mismatches < 10; a += step) {
      SourceLocation own_line, libdw_line;
      bool own_found = own.lookup(a, own_chain, &own_line);
      bool libdw_found = libdw.lookup(a, libdw_chain, &libdw_line);
      bool same = own_found == libdw_found && own_chain == libdw_chain && own_line.line == libdw_line.line &&
                  own_line.column == libdw_line.column &&
                  own.file_name(own_line.file) == libdw.file_name(libdw_line.file);
      for (size_t i = 0; same && i < own_chain.size(); ++i) {
        same = std::string(own.raw_name(own_chain[i])) == libdw.raw_name(libdw_chain[i]);
        SourceLocation oc = own.call_site(own_chain[i]), lc = libdw.call_site(libdw_chain[i]);
        same = same && oc.line == lc.line && oc.column == lc.column && own.file_name(oc.file) == libdw.file_name(lc.file);
      }
      if (!same) {
        ++mismatches;
        ADD_FAILURE() << what << ": 0x" << std::hex << a << " answered differently (own found " << own_found
                      << ", " << own_chain.size() << " frames; libdw found " << libdw_found << ", "
                      << libdw_chain.size() << " frames)";
      }
      named += own_found;
    }
  }
  return named;
}

struct Listed {
  size_t units = 0;
  size_t by_aranges = 0;  // of them, listed from .debug_aranges
};

// own_names: every name should come from UnitReader (no reference leaves
// its unit; not so with LTO, whose concrete functions name abstract ones in
// other units). Returns how the own index listed its units.
Listed compare_file(const std::string& what, const std::string& dwarf_path, const std::string& code_path,
                    uint64_t step, bool own_names = true) {
  auto file = ElfFile::open_path(dwarf_path);
  auto view = file->open_for_dwarf();  // as Module reads it: inflated when compressed
  Elf* elf = view ? view->elf() : file->elf();
  auto own = DwarfIndex::build(elf);
  auto libdw = DwarfIndex::build(elf, DwarfIndex::kLibdwRowBudget, false);
  EXPECT_NE(own, nullptr) << what;
  EXPECT_NE(libdw, nullptr) << what;
  if (own == nullptr || libdw == nullptr) return {};
  EXPECT_EQ(own->unit_count(), libdw->unit_count()) << what;
  auto code = ElfFile::open_path(code_path);
  size_t named = expect_same_answers(what, code->elf(), *own, *libdw, step);
  EXPECT_GT(named, 0u) << what;
  EXPECT_EQ(own->function_count(), libdw->function_count()) << what;
  EXPECT_EQ(own->line_count(), libdw->line_count()) << what;
  EXPECT_EQ(own->units_read(), libdw->units_read()) << what;
  EXPECT_EQ(own->units_walked_by_libdw(), 0u) << what << ": UnitReader fell back to libdw";
  EXPECT_EQ(libdw->units_walked_by_libdw(), libdw->units_read()) << what;
  EXPECT_GT(libdw->names_read_by_libdw(), 0u) << what;
  if (own_names) {
    EXPECT_EQ(own->names_read_by_libdw(), 0u) << what << ": names fell back to libdw";
  }
  return {own->unit_count(), own->units_listed_by_aranges()};
}

// GCC writes .debug_aranges: its units are listed from it, unit DIEs unread.
TEST(DieReader, AgreesWithLibdwOnGccDwarf5) {
  Listed listed =
      compare_file("two units", testing::fixture_bin("symfix_two_units"), testing::fixture_bin("symfix_two_units"), 1);
  EXPECT_EQ(listed.units, 2u);
  EXPECT_EQ(listed.by_aranges, 2u);
}

TEST(DieReader, AgreesWithLibdwOnGccDwarf4) {
  Listed listed =
      compare_file("dwarf4", testing::fixture_bin("symfix_dwarf4"), testing::fixture_bin("symfix_dwarf4"), 1);
  EXPECT_EQ(listed.by_aranges, listed.units);
}

TEST(DieReader, AgreesWithLibdwOnCompressedSections) {
  Listed listed = compare_file("compressed", testing::fixture_bin("symfix_compressed"),
                               testing::fixture_bin("symfix_compressed"), 1);
  EXPECT_EQ(listed.by_aranges, listed.units);
}

// A GCC unit (in .debug_aranges) and a clang one (not: its ranges come from
// its unit DIE) in one executable.
TEST(DieReader, AgreesWithLibdwWhenSomeUnitsHaveNoAranges) {
  Listed listed = compare_file("mixed", testing::fixture_bin("symfix_mixed"), testing::fixture_bin("symfix_mixed"), 1);
  EXPECT_EQ(listed.units, 2u);
  EXPECT_EQ(listed.by_aranges, 1u);
}

TEST(DieReader, AgreesWithLibdwOnLto) {
  compare_file("lto", testing::fixture_bin("symfix_lto"), testing::fixture_bin("symfix_lto"), 1, false);
}

// clang's DWARF 5 names strings and addresses by index (DW_FORM_strx1,
// DW_FORM_addrx, DW_AT_str_offsets_base, DW_AT_addr_base) and uses
// DW_FORM_rnglistx range lists, which GCC's does not.
TEST(DieReader, AgreesWithLibdwOnClangDwarf5) {
  Listed listed = compare_file("clang dwarf5", testing::fixture_bin("symfix_clang_dwarf5"),
                               testing::fixture_bin("symfix_clang_dwarf5"), 1);
  EXPECT_EQ(listed.by_aranges, 0u);  // clang writes no .debug_aranges by default
}

TEST(DieReader, AgreesWithLibdwOnClangDwarf4) {
  compare_file("clang dwarf4", testing::fixture_bin("symfix_clang_dwarf4"), testing::fixture_bin("symfix_clang_dwarf4"),
               1);
}

// The machine's own large debug files, when their -dbg packages are there:
// hand-written assembly, LTO, thousands of units.
TEST(DieReader, AgreesWithLibdwOnInstalledDebugFiles) {
  size_t compared = 0;
  for (const char* binary : {"/lib/x86_64-linux-gnu/libc.so.6", "/usr/bin/python3.11"}) {
    if (!std::filesystem::exists(binary)) continue;
    auto main = ElfFile::open_path(binary);
    std::string id = main->build_id();
    if (id.size() < 3) continue;
    std::string debug = "/usr/lib/debug/.build-id/" + id.substr(0, 2) + "/" + id.substr(2) + ".debug";
    if (!std::filesystem::exists(debug)) continue;
    // Every 13th byte: a few hundred thousand addresses.
    Listed listed = compare_file(binary, debug, binary, 13, false);
    // libc's units nearly all have code (all but ~120 of 2,063 in aranges);
    // python3.11's LTO leaves two thirds of its units without any.
    EXPECT_GT(listed.by_aranges, std::string(binary).ends_with("libc.so.6") ? listed.units / 2 : 0) << binary;
    ++compared;
  }
  if (compared == 0) GTEST_SKIP() << "no installed debug files (libc6-dbg, python3.11-dbg)";
}

// A .debug_aranges set: 32-bit offsets, 8-byte addresses, padded to 16.
std::vector<uint8_t> arange_set(uint32_t unit, const std::vector<std::pair<uint64_t, uint64_t>>& tuples,
                                uint16_t version = 2) {
  std::vector<uint8_t> out;
  auto put = [&out](uint64_t value, size_t size) {
    for (size_t i = 0; i < size; ++i) out.push_back(i < 8 ? static_cast<uint8_t>(value >> (8 * i)) : 0);
  };
  put(0, 4);  // length, set below
  put(version, 2);
  put(unit, 4);
  put(8, 1);  // address size
  put(0, 1);  // segment selector size
  put(0, 4);  // padding to 16 bytes
  for (auto [address, length] : tuples) {
    put(address, 8);
    put(length, 8);
  }
  put(0, 16);  // terminator
  uint32_t length = static_cast<uint32_t>(out.size() - 4);
  std::memcpy(out.data(), &length, 4);
  return out;
}

TEST(Aranges, KeepsTheRangesUnitDiesWouldGiveSortedByUnit) {
  std::vector<uint8_t> section = arange_set(0x40, {{0x2000, 0x30}});
  std::vector<uint8_t> first = arange_set(0x10, {{0x1000, 0x20}, {0, 0x10}, {0x1800, 0}, {0x1100, 8}});
  section.insert(section.end(), first.begin(), first.end());
  std::vector<UnitArange> expected = {{0x10, 0x1000, 0x1020}, {0x10, 0x1100, 0x1108}, {0x40, 0x2000, 0x2030}};
  // Discarded code (address 0) and empty ranges are left out, as the DIE
  // reader leaves them out; the second unit's set came first.
  EXPECT_EQ(read_aranges(section, 0x100), expected);
}

TEST(Aranges, AnythingUnexpectedMeansNone) {
  std::vector<uint8_t> good = arange_set(0x10, {{0x1000, 0x20}});
  EXPECT_EQ(read_aranges(good, 0x100).size(), 1u);
  EXPECT_TRUE(read_aranges({}, 0x100).empty());
  EXPECT_TRUE(read_aranges(good, 0x10).empty()) << "a unit offset past .debug_info";
  EXPECT_TRUE(read_aranges(arange_set(0x10, {{0x1000, 0x20}}, 3), 0x100).empty()) << "version 3";
  std::vector<uint8_t> truncated(good.begin(), good.end() - 1);
  EXPECT_TRUE(read_aranges(truncated, 0x100).empty()) << "a set longer than the section";
  std::vector<uint8_t> wrapping = arange_set(0x10, {{UINT64_MAX - 4, 0x20}});
  EXPECT_TRUE(read_aranges(wrapping, 0x100).empty()) << "a range past the end of the address space";
}

// A damaged unit header is refused, not misread.
TEST(DieReader, RefusesTruncatedUnit) {
  // A DWARF 5 compile unit header claiming more bytes than the section has.
  const uint8_t info[] = {0x40, 0, 0, 0, 5, 0, DW_UT_compile, 8, 0, 0, 0, 0, 1};
  const uint8_t abbrev[] = {1, DW_TAG_compile_unit, 0, 0, 0, 0};
  DebugSections s;
  s.info = info;
  s.abbrev = abbrev;
  UnitReader reader(s);
  EXPECT_FALSE(reader.open(0));
}

// A minimal hand-made unit: a subprogram with low_pc/high_pc (offset form)
// under a namespace, a structure type skipped through DW_AT_sibling, and an
// inlined subroutine with a DWARF 4 .debug_ranges list using a base address
// selection entry.
TEST(DieReader, WalksHandMadeUnit) {
  // Abbreviations: 1 compile_unit (children, low_pc addr), 2 namespace
  // (children), 3 structure_type (children, sibling ref4), 4 member (no
  // children, data1 name-less), 5 subprogram (children, low_pc addr,
  // high_pc data4), 6 inlined_subroutine (no children, ranges sec_offset,
  // call_file data1, call_line data2).
  const uint8_t abbrev[] = {
      1, DW_TAG_compile_unit, 1, DW_AT_low_pc, DW_FORM_addr, 0, 0,
      2, DW_TAG_namespace, 1, 0, 0,
      3, DW_TAG_structure_type, 1, DW_AT_sibling, DW_FORM_ref4, 0, 0,
      4, DW_TAG_member, 0, DW_AT_byte_size, DW_FORM_data1, 0, 0,
      5, DW_TAG_subprogram, 1, DW_AT_low_pc, DW_FORM_addr, DW_AT_high_pc, DW_FORM_data4, 0, 0,
      6, DW_TAG_inlined_subroutine, 0, DW_AT_ranges, DW_FORM_sec_offset, DW_AT_call_file, DW_FORM_data1,
      DW_AT_call_line, DW_FORM_data2, 0, 0,
      0};
  std::vector<uint8_t> info = {0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 8};  // DWARF 4 header, length patched below
  auto u64 = [&info](uint64_t v) {
    for (int i = 0; i < 8; ++i) info.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  auto u32 = [&info](uint32_t v) {
    for (int i = 0; i < 4; ++i) info.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  info.push_back(1);  // compile_unit
  u64(0x1000);        // low_pc: the unit's base address
  info.push_back(3);  // structure_type
  size_t sibling_at = info.size();
  u32(0);  // patched: offset of the namespace below
  info.push_back(4);
  info.push_back(8);
  info.push_back(5);  // a subprogram inside the type: must not be seen (skipped with the type)
  u64(0x5000);
  u32(0x10);
  info.push_back(0);  // end of its children
  info.push_back(0);  // end of the structure's children
  uint32_t namespace_offset = static_cast<uint32_t>(info.size());
  std::memcpy(info.data() + sibling_at, &namespace_offset, 4);
  info.push_back(2);  // namespace
  info.push_back(5);  // subprogram [0x2000, 0x2100)
  u64(0x2000);
  u32(0x100);
  info.push_back(6);  // inlined: ranges at offset 0 of .debug_ranges
  u32(0);
  info.push_back(3);  // call_file
  info.push_back(42);
  info.push_back(0);  // call_line 42
  info.push_back(0);  // end of the subprogram's children
  info.push_back(0);  // end of the namespace's children
  info.push_back(0);  // end of the unit's children
  uint32_t length = static_cast<uint32_t>(info.size() - 4);
  std::memcpy(info.data(), &length, 4);
  // .debug_ranges: [base+0x1010, base+0x1020), then base := 0x2000, [0x2040, 0x2050), end.
  std::vector<uint8_t> ranges;
  auto r64 = [&ranges](uint64_t v) {
    for (int i = 0; i < 8; ++i) ranges.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  r64(0x1010), r64(0x1020), r64(~uint64_t{0}), r64(0x2000), r64(0x40), r64(0x50), r64(0), r64(0);

  DebugSections s;
  s.info = info;
  s.abbrev = abbrev;
  s.ranges = ranges;
  UnitReader reader(s);
  ASSERT_TRUE(reader.open(0));
  EXPECT_EQ(reader.version(), 4u);
  EXPECT_EQ(reader.tag(), static_cast<unsigned>(DW_TAG_compile_unit));
  UnitWalk walk;
  ASSERT_TRUE(reader.walk(walk));
  ASSERT_EQ(walk.functions.size(), 2u);  // not the subprogram inside the structure
  const FunctionDie& sub = walk.functions[0];
  EXPECT_FALSE(sub.inlined);
  EXPECT_EQ(sub.parent, FunctionDie::kTopLevel);
  ASSERT_EQ(sub.end_range - sub.first_range, 1u);
  EXPECT_EQ(walk.ranges[sub.first_range].low, 0x2000u);
  EXPECT_EQ(walk.ranges[sub.first_range].high, 0x2100u);
  const FunctionDie& in = walk.functions[1];
  EXPECT_TRUE(in.inlined);
  EXPECT_EQ(in.parent, 0u);
  EXPECT_TRUE(in.has_call_file);
  EXPECT_EQ(in.call_file, 3u);
  EXPECT_EQ(in.call_line, 42u);
  ASSERT_EQ(in.end_range - in.first_range, 2u);
  EXPECT_EQ(walk.ranges[in.first_range].low, 0x2010u);
  EXPECT_EQ(walk.ranges[in.first_range].high, 0x2020u);
  EXPECT_EQ(walk.ranges[in.first_range + 1].low, 0x2040u);
  EXPECT_EQ(walk.ranges[in.first_range + 1].high, 0x2050u);
  EXPECT_EQ(reader.next_unit_offset(), info.size());
}

}  // namespace
}  // namespace stackwatch::symbolizer
