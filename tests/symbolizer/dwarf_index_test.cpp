// The lazy per-unit DWARF index: a unit's functions and lines are read when
// an address first falls in it, never before, and only that unit is read.
#include <gtest/gtest.h>

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
