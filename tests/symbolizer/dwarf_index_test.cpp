// The lazy per-unit DWARF index: a unit's functions and lines are read when
// an address first falls in it, never before, and only that unit is read.
#include <gtest/gtest.h>
#include <dwarf.h>
#include <elfutils/libdw.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "symbolizer/dwarf_index.h"
#include "symbolizer/elf_file.h"
#include "test_support.h"

namespace stackwatch::symbolizer {
namespace {

TEST(DwarfIndex, ReadsOnlyTheUnitOfEachAddress) {
  std::string path = testing::fixture_bin("symfix_two_units");
  auto file = ElfFile::open_path(path);
  auto index = DwarfIndex::build(file->elf());
  ASSERT_NE(index, nullptr);
  ASSERT_EQ(index->unit_count(), 2u);  // inline_fixture.cpp and shared_lib.cpp
  EXPECT_EQ(index->units_read(), 0u);  // both state their ranges: nothing read up front
  EXPECT_EQ(index->function_count(), 0u);

  std::vector<uint32_t> chain;
  auto shared = testing::elf_symbol(path, "shared_work");
  ASSERT_TRUE(index->functions_at(shared.vaddr + shared.size / 2, chain));
  EXPECT_STREQ(index->raw_name(chain.front()), "shared_work");
  EXPECT_EQ(index->units_read(), 1u);
  size_t functions_of_one_unit = index->function_count();

  // Again in the same unit: nothing more is read.
  SourceLocation line;
  ASSERT_TRUE(index->line_at(shared.vaddr, line));
  EXPECT_TRUE(index->file_name(line.file).ends_with("shared_lib.cpp")) << index->file_name(line.file);
  EXPECT_EQ(index->units_read(), 1u);

  auto outer = testing::elf_symbol(path, "outer_entry");
  ASSERT_TRUE(index->lookup(outer.vaddr, chain, &line));
  EXPECT_STREQ(index->raw_name(chain.front()), "outer_entry");
  EXPECT_TRUE(index->file_name(line.file).ends_with("inline_fixture.cpp")) << index->file_name(line.file);
  EXPECT_EQ(index->units_read(), 2u);
  EXPECT_GT(index->function_count(), functions_of_one_unit);
}

TEST(DwarfIndex, AddressOutsideEveryUnitReadsNothing) {
  std::string path = testing::fixture_bin("symfix_two_units");
  auto file = ElfFile::open_path(path);
  auto index = DwarfIndex::build(file->elf());
  ASSERT_NE(index, nullptr);
  std::vector<uint32_t> chain;
  SourceLocation line;
  EXPECT_FALSE(index->functions_at(0x10, chain));
  EXPECT_FALSE(index->line_at(0x10, line));
  EXPECT_EQ(index->units_read(), 0u);
}

// The index keeps a unit's line rows sorted, minus those no lookup can reach
// (dropped as they are written when the sequences ascend, after a sort when
// they overlap). Whichever path a unit took, every address must get the row
// libdw's sorted table gives it: the last row at or below the address, none
// when that row ends a sequence. Returns how many addresses were compared.
size_t expect_lines_like_libdw(const std::string& path, uint64_t step, size_t* rows_kept = nullptr,
                               size_t* index_rows = nullptr) {
  auto file = ElfFile::open_path(path);
  auto view = file->open_for_dwarf();
  Elf* elf = view ? view->elf() : file->elf();
  auto index = DwarfIndex::build(elf);
  Dwarf* dwarf = dwarf_begin_elf(elf, DWARF_C_READ, nullptr);
  EXPECT_NE(index, nullptr) << path;
  EXPECT_NE(dwarf, nullptr) << path;
  if (index == nullptr || dwarf == nullptr) return 0;
  size_t compared = 0, mismatches = 0;
  Dwarf_CU* cu = nullptr;
  Dwarf_Half version = 0;
  uint8_t unit_type = 0;
  Dwarf_Die cudie, subdie;
  while (dwarf_get_units(dwarf, cu, &cu, &version, &unit_type, &cudie, &subdie) == 0 && mismatches < 10) {
    Dwarf_Lines* lines = nullptr;
    size_t count = 0;
    if (dwarf_getsrclines(&cudie, &lines, &count) != 0 || count == 0) continue;
    struct Row {
      Dwarf_Addr address = 0;
      bool end = false;
      int line = 0, column = 0;
    };
    std::vector<Row> rows(count);
    std::vector<const char*> files(count);
    for (size_t i = 0; i < count; ++i) {
      Dwarf_Line* l = dwarf_onesrcline(lines, i);
      dwarf_lineaddr(l, &rows[i].address);
      dwarf_lineendsequence(l, &rows[i].end);
      dwarf_lineno(l, &rows[i].line);
      dwarf_linecol(l, &rows[i].column);
      files[i] = dwarf_linesrc(l, nullptr, nullptr);
    }
    // The rows the index keeps of these: not a row followed by one at its
    // address, nor one saying what the row kept before it says (libdw ends
    // the last row, as the index does).
    rows.back().end = true;
    size_t kept = 0;
    for (size_t i = 0, last = SIZE_MAX; i < count; ++i) {
      if (!rows[i].end && i + 1 < count) {
        if (!rows[i + 1].end && rows[i + 1].address == rows[i].address) continue;
        if (last != SIZE_MAX && !rows[last].end && rows[last].line == rows[i].line &&
            rows[last].column == rows[i].column && files[last] == files[i])
          continue;
      }
      last = i;
      ++kept;
    }
    if (rows_kept != nullptr) *rows_kept += kept;
    // Only addresses in this unit's own ranges: there the index asks this
    // unit's rows.
    Dwarf_Addr base = 0, low = 0, high = 0;
    ptrdiff_t offset = 0;
    while ((offset = dwarf_ranges(&cudie, offset, &base, &low, &high)) > 0 && mismatches < 10) {
      if (low == 0 || high <= low) continue;
      for (Dwarf_Addr a = low; a < high && mismatches < 10; a += step) {
        auto upper = std::upper_bound(rows.begin(), rows.end(), a,
                                      [](Dwarf_Addr x, const Row& r) { return x < r.address; });
        bool expected = upper != rows.begin() && !std::prev(upper)->end;
        SourceLocation got;
        bool found = index->line_at(a, got);
        ++compared;
        bool same = found == expected &&
                    (!found || (static_cast<int>(got.line) == std::prev(upper)->line &&
                                static_cast<int>(got.column) == std::prev(upper)->column));
        if (!same) {
          ++mismatches;
          ADD_FAILURE() << path << ": 0x" << std::hex << a << std::dec << " line " << (found ? got.line : 0)
                        << ", libdw's row says " << (expected ? std::prev(upper)->line : 0);
        }
      }
    }
  }
  dwarf_end(dwarf);
  if (index_rows != nullptr) *index_rows = index->line_count();
  return compared;
}

TEST(DwarfIndex, LinesAreLibdwsRowsOnTheFixtures) {
  for (const char* name :
       {"symfix_two_units", "symfix_dwarf4", "symfix_compressed", "symfix_clang_dwarf5", "symfix_lto"}) {
    size_t kept = 0, held = 0;
    EXPECT_GT(expect_lines_like_libdw(testing::fixture_bin(name), 1, &kept, &held), 50u) << name;
    EXPECT_EQ(held, kept) << name << ": rows kept by the index";
  }
}

// libc: 347 units whose sequences end where their last rows are, units of
// hand-written assembly whose sequences overlap (the sorting path).
TEST(DwarfIndex, LinesAreLibdwsRowsOnInstalledDebugFiles) {
  size_t compared = 0;
  for (const char* binary : {"/lib/x86_64-linux-gnu/libc.so.6", "/usr/bin/python3.11"}) {
    if (!std::filesystem::exists(binary)) continue;
    std::string id = ElfFile::open_path(binary)->build_id();
    if (id.size() < 3) continue;
    std::string debug = "/usr/lib/debug/.build-id/" + id.substr(0, 2) + "/" + id.substr(2) + ".debug";
    if (!std::filesystem::exists(debug)) continue;
    size_t kept = 0, held = 0;
    compared += expect_lines_like_libdw(debug, 7, &kept, &held);
    EXPECT_EQ(held, kept) << binary << ": rows kept by the index";
  }
  if (compared == 0) GTEST_SKIP() << "no installed debug files (libc6-dbg, python3.11-dbg)";
}

// With a budget of 0 rows libdw is ended and restarted after every unit: the
// names and files read before a restart must still be right after it (they
// live in the ELF file's sections, not in libdw's caches).
TEST(DwarfIndex, NamesSurviveLibdwRestarts) {
  std::string path = testing::fixture_bin("symfix_two_units");
  auto file = ElfFile::open_path(path);
  auto index = DwarfIndex::build(file->elf(), 0);
  ASSERT_NE(index, nullptr);
  auto shared = testing::elf_symbol(path, "shared_work");
  auto outer = testing::elf_symbol(path, "outer_entry");
  std::vector<uint32_t> chain;
  SourceLocation line;
  ASSERT_TRUE(index->lookup(shared.vaddr, chain, &line));
  uint32_t shared_node = chain.front();
  uint32_t shared_file = line.file;
  size_t restarts = index->libdw_restarts();
  ASSERT_TRUE(index->lookup(outer.vaddr, chain, &line));  // reads the other unit after a restart
  EXPECT_GT(index->libdw_restarts(), restarts);
  EXPECT_STREQ(index->raw_name(chain.front()), "outer_entry");
  EXPECT_STREQ(index->raw_name(shared_node), "shared_work");
  EXPECT_TRUE(index->file_name(shared_file).ends_with("shared_lib.cpp"));
  EXPECT_EQ(index->units_read(), 2u);
}

}  // namespace
}  // namespace stackwatch::symbolizer
