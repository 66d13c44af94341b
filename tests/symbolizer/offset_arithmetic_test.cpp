// File offset <-> virtual address arithmetic over PT_LOAD segments, where a
// PIE or a shared object maps code at non-zero file offsets with
// p_vaddr != p_offset (lld's layout; also prelinked or hand-linked objects).
#include <gtest/gtest.h>

#include "symbolizer/elf_file.h"
#include "symbolizer/symbolizer.h"
#include "test_support.h"

namespace stackwatch::symbolizer {
namespace {

TEST(OffsetArithmetic, SegmentsWithVaddrDifferentFromOffset) {
  // As lld lays out a shared object: headers+rodata at 0, code at file
  // offset 0x5e0 loaded at 0x15e0, data at offset 0x800 loaded at 0x2800.
  std::vector<LoadSegment> segments = {
      {0x0, 0x5e0, 0x0, 0x5e0, false},
      {0x15e0, 0x200, 0x5e0, 0x200, true},
      {0x2800, 0x300, 0x800, 0x100, false},
  };
  EXPECT_EQ(offset_to_vaddr(segments, 0x5e0), 0x15e0u);
  EXPECT_EQ(offset_to_vaddr(segments, 0x700), 0x1700u);
  EXPECT_EQ(offset_to_vaddr(segments, 0x100), 0x100u);
  EXPECT_EQ(offset_to_vaddr(segments, 0x850), 0x2850u);
  EXPECT_FALSE(offset_to_vaddr(segments, 0x5000).has_value());
  EXPECT_EQ(vaddr_to_offset(segments, 0x1700), 0x700u);
  EXPECT_FALSE(vaddr_to_offset(segments, 0x1000).has_value());  // the hole between segments
  // .bss (memsz beyond filesz) has no file bytes for offset_to_vaddr.
  EXPECT_EQ(vaddr_to_offset(segments, 0x2a00), 0xa00u);
}

TEST(OffsetArithmetic, RuntimeAddressThroughMappingToVaddr) {
  // The kernel maps the page holding the code: offset 0x0 (0x5e0 rounded
  // down) at base+0x1000; an instruction at vaddr 0x1700 runs at base+0x1700.
  const uint64_t base = 0x7f0000000000;
  Mapping m;
  m.start = base + 0x1000;
  m.end = base + 0x2000;
  m.file_offset = 0x0;
  m.perms = "r-xp";
  std::vector<LoadSegment> segments = {{0x15e0, 0x200, 0x5e0, 0x200, true}};
  uint64_t offset = m.file_offset_of(base + 0x1700);
  EXPECT_EQ(offset, 0x700u);
  EXPECT_EQ(offset_to_vaddr(segments, offset), 0x1700u);
}

TEST(OffsetArithmetic, LldFixtureHasTheLayoutTheTestsNeed) {
  auto seg = testing::exec_segment(testing::fixture_bin("libsymfix_shared.so"));
  EXPECT_NE(seg.vaddr, seg.offset);
  auto file = ElfFile::open_path(testing::fixture_bin("libsymfix_shared.so"));
  auto fn = testing::elf_symbol(testing::fixture_bin("libsymfix_shared.so"), "shared_work");
  uint64_t offset = fn.vaddr - seg.vaddr + seg.offset;
  EXPECT_EQ(offset_to_vaddr(file->segments(), offset), fn.vaddr);
  EXPECT_EQ(vaddr_to_offset(file->segments(), fn.vaddr), offset);
}

}  // namespace
}  // namespace stackwatch::symbolizer
