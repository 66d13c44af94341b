// The inflated image (compressed debug sections inflated by libdeflate before
// libdw sees them): a fixture built with zlib-compressed DWARF symbolizes
// exactly like its uncompressed twin, inline chains, files and lines.
#include <gelf.h>
#include <gtest/gtest.h>

#include <string>

#include "symbolizer/elf_file.h"
#include "symbolizer/symbolizer.h"
#include "same_frames.h"
#include "test_support.h"

namespace stackwatch::symbolizer {
namespace {

bool has_compressed_section(const std::string& path) {
  auto file = ElfFile::open_path(path);
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(file->elf(), scn)) != nullptr) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) != nullptr && (shdr.sh_flags & SHF_COMPRESSED) != 0) return true;
  }
  return false;
}

// symfix_compressed is symfix_two_units built with -gz: the same code at the
// same addresses, its DWARF in zlib-compressed sections, read through the
// inflated image.
TEST(InflatedImage, CompressedDebugSectionsSymbolizeLikeUncompressed) {
  std::string plain = testing::fixture_bin("symfix_two_units");
  std::string compressed = testing::fixture_bin("symfix_compressed");
  ASSERT_FALSE(has_compressed_section(plain));
  ASSERT_TRUE(has_compressed_section(compressed));
  // What libdw is given is the inflated copy, not the file (where libelf
  // would inflate through zlib).
  auto file = ElfFile::open_path(compressed);
  auto view = file->open_for_dwarf();
  ASSERT_NE(view, nullptr);
  size_t shstrndx = 0;
  ASSERT_EQ(elf_getshdrstrndx(view->elf(), &shstrndx), 0);
  bool saw_info = false;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(view->elf(), scn)) != nullptr) {
    GElf_Shdr shdr;
    ASSERT_NE(gelf_getshdr(scn, &shdr), nullptr);
    EXPECT_EQ(shdr.sh_flags & SHF_COMPRESSED, 0u);
    if (std::string(elf_strptr(view->elf(), shstrndx, shdr.sh_name)) == ".debug_info") {
      saw_info = true;
      Elf_Data* data = elf_getdata(scn, nullptr);
      ASSERT_NE(data, nullptr);
      EXPECT_EQ(data->d_size, shdr.sh_size);
      EXPECT_EQ(static_cast<const unsigned char*>(data->d_buf)[4], 5);  // DWARF 5 unit header, readable as is
    }
  }
  EXPECT_TRUE(saw_info);
  for (const char* function : {"outer_entry", "shared_work", "main"})
    ASSERT_EQ(testing::elf_symbol(compressed, function).vaddr, testing::elf_symbol(plain, function).vaddr) << function;
  Symbolizer a, b;
  auto compared = testing::expect_same_frames(a, plain, b, compressed, {"outer_entry", "shared_work", "main"});
  EXPECT_GT(compared.addresses, 50u);
  EXPECT_GT(compared.inlined, 0u);  // the inline chains were compared too
}

}  // namespace
}  // namespace stackwatch::symbolizer
