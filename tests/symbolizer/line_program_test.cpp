// LineProgram (our .debug_line decoder) against libdw's dwarf_getsrclines on
// every compile unit of the fixtures (DWARF 5 and 4, LTO, a shared library,
// compressed sections) and of Debian's libc debug file: the same rows
// (address, line, column, end of sequence) with the same file paths, in
// libdw's order, and the same file tables.
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include "symbolizer/elf_file.h"
#include "symbolizer/line_program.h"
#include "test_support.h"

namespace stackwatch::symbolizer {
namespace {

using Row = std::tuple<uint64_t, bool, int, int, std::string>;  // address, end, line, column, file

// libdw's order: by address, an end of sequence before a row at its address,
// else program order.
void sort_like_libdw(std::vector<Row>& rows) {
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (std::get<0>(a) != std::get<0>(b)) return std::get<0>(a) < std::get<0>(b);
    return std::get<1>(a) > std::get<1>(b);
  });
}

struct Compared {
  size_t units = 0;
  size_t rows = 0;
};

// Compares every unit of the ELF file at path; the file's debug file under
// /usr/lib/debug when it has no DWARF itself.
void compare_all_units(const std::string& path, Compared& out) {
  auto file = ElfFile::open_path(path);
  Dwarf* dwarf = dwarf_begin_elf(file->elf(), DWARF_C_READ, nullptr);
  EXPECT_NE(dwarf, nullptr) << path;
  if (dwarf == nullptr) return;
  auto sections = find_line_sections(file->elf());
  EXPECT_TRUE(sections.has_value()) << path;
  if (!sections) {
    dwarf_end(dwarf);
    return;
  }
  Dwarf_CU* cu = nullptr;
  Dwarf_Half version = 0;
  uint8_t unit_type = 0;
  Dwarf_Die cudie, subdie;
  LineProgram program;
  std::vector<LineRow> decoded;
  while (dwarf_get_units(dwarf, cu, &cu, &version, &unit_type, &cudie, &subdie) == 0) {
    Dwarf_Attribute attr;
    Dwarf_Word stmt_list = 0;
    if (dwarf_attr(&cudie, DW_AT_stmt_list, &attr) == nullptr || dwarf_formudata(&attr, &stmt_list) != 0) continue;
    Dwarf_Lines* lines = nullptr;
    size_t count = 0;
    ASSERT_EQ(dwarf_getsrclines(&cudie, &lines, &count), 0) << path;
    std::vector<Row> theirs;
    for (size_t i = 0; i < count; ++i) {
      Dwarf_Line* line = dwarf_onesrcline(lines, i);
      Dwarf_Addr addr = 0;
      int lineno = 0, column = 0;
      bool end = false;
      dwarf_lineaddr(line, &addr);
      dwarf_lineno(line, &lineno);
      dwarf_linecol(line, &column);
      dwarf_lineendsequence(line, &end);
      const char* name = dwarf_linesrc(line, nullptr, nullptr);
      theirs.emplace_back(addr, end, lineno, column, name != nullptr ? name : "");
    }
    const char* comp_dir = dwarf_formstring(dwarf_attr(&cudie, DW_AT_comp_dir, &attr));
    uint8_t address_size = 0;
    ASSERT_EQ(dwarf_cu_info(cu, nullptr, nullptr, nullptr, nullptr, nullptr, &address_size, nullptr), 0);
    decoded.clear();
    ASSERT_TRUE(program.decode(*sections, stmt_list, address_size, comp_dir, decoded))
        << path << ": unit at " << dwarf_dieoffset(&cudie);
    std::vector<Row> ours;
    for (const LineRow& r : decoded)
      ours.emplace_back(r.address, r.end_sequence, r.line, static_cast<int>(r.column), program.file_path(r.file));
    sort_like_libdw(ours);
    // libdw marks the highest row an end of sequence (DwarfIndex does too).
    if (!ours.empty()) std::get<1>(ours.back()) = true;
    ASSERT_EQ(ours.size(), theirs.size()) << path << ": unit at " << dwarf_dieoffset(&cudie);
    for (size_t i = 0; i < ours.size(); ++i)
      ASSERT_EQ(ours[i], theirs[i]) << path << ": unit at " << dwarf_dieoffset(&cudie) << ", row " << i;
    // The file table too: call sites (DW_AT_call_file) index it directly.
    Dwarf_Files* files = nullptr;
    size_t file_count = 0;
    ASSERT_EQ(dwarf_getsrcfiles(&cudie, &files, &file_count), 0);
    ASSERT_EQ(program.file_count(), file_count) << path;
    for (size_t i = 0; i < file_count; ++i)
      ASSERT_EQ(program.file_path(i), dwarf_filesrc(files, i, nullptr, nullptr)) << path << ": file " << i;
    ++out.units;
    out.rows += ours.size();
  }
  dwarf_end(dwarf);
}

TEST(LineProgram, MatchesLibdwOnEveryUnitOfTheFixtures) {
  for (const char* name : {"symfix_pie", "symfix_nopie", "symfix_two_units", "symfix_lto", "libsymfix_shared.so",
                           "symfix_dwarf4", "symfix_compressed"}) {
    SCOPED_TRACE(name);
    Compared c;
    compare_all_units(testing::fixture_bin(name), c);
    EXPECT_GE(c.units, 1u);
    EXPECT_GE(c.rows, 10u);
  }
}

// Debian's libc debug file: 4,000 units of GCC DWARF 5, hand-written
// assembly among them, compressed sections (decompressed by libelf here).
TEST(LineProgram, MatchesLibdwOnEveryUnitOfLibc) {
  int fd = ::open("/lib/x86_64-linux-gnu/libc.so.6", O_RDONLY | O_CLOEXEC);
  std::string id = fd >= 0 ? read_build_id(fd) : "";
  if (fd >= 0) ::close(fd);
  std::string debug = id.size() > 2 ? "/usr/lib/debug/.build-id/" + id.substr(0, 2) + "/" + id.substr(2) + ".debug" : "";
  if (debug.empty() || !std::filesystem::exists(debug)) GTEST_SKIP() << "libc6-dbg is not installed";
  Compared c;
  compare_all_units(debug, c);
  EXPECT_GE(c.units, 1000u);
  EXPECT_GE(c.rows, 100000u);
}

}  // namespace
}  // namespace stackwatch::symbolizer
