// parse_proc_maps on fixture text: paths with spaces and " (deleted)",
// anonymous and special mappings, garbage lines skipped.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "symbolizer/symbolizer.h"
#include "test_support.h"

namespace stackwatch::symbolizer {
namespace {

std::string read_fixture(const std::string& name) {
  std::ifstream in(testing::fixture_src(name));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ParseProcMaps, ParsesEveryWellFormedLine) {
  auto maps = parse_proc_maps(read_fixture("maps.txt"));
  ASSERT_EQ(maps.size(), 9u);
  EXPECT_EQ(maps[0].start, 0x55d0c7a00000u);
  EXPECT_EQ(maps[0].end, 0x55d0c7a02000u);
  EXPECT_EQ(maps[0].perms, "r--p");
  EXPECT_FALSE(maps[0].executable());
  EXPECT_EQ(maps[0].path, "/usr/bin/sleep");
  EXPECT_EQ(maps[1].file_offset, 0x2000u);
  EXPECT_TRUE(maps[1].executable());
  EXPECT_EQ(maps[1].dev_major, 0xfeu);
  EXPECT_EQ(maps[1].dev_minor, 0u);
  EXPECT_EQ(maps[1].inode, 248056u);
}

TEST(ParseProcMaps, KeepsSpecialAnonymousAndDeletedPaths) {
  auto maps = parse_proc_maps(read_fixture("maps.txt"));
  ASSERT_EQ(maps.size(), 9u);
  EXPECT_EQ(maps[2].path, "[heap]");
  EXPECT_EQ(maps[3].path, "");  // anonymous: trailing space, no path
  EXPECT_EQ(maps[3].inode, 0u);
  EXPECT_EQ(maps[6].path, "/tmp/my app/server (deleted)");
  EXPECT_EQ(maps[6].dev_major, 8u);
  EXPECT_EQ(maps[6].dev_minor, 0x11u);
  EXPECT_EQ(maps[7].path, "[vdso]");
  EXPECT_EQ(maps[8].path, "[vsyscall]");
  EXPECT_TRUE(maps[8].executable());
}

TEST(ParseProcMaps, FileOffsetOfAddress) {
  auto maps = parse_proc_maps(read_fixture("maps.txt"));
  // libc's code mapping starts at file offset 0x28000.
  EXPECT_EQ(maps[5].file_offset_of(0x7f1c2a228000), 0x28000u);
  EXPECT_EQ(maps[5].file_offset_of(0x7f1c2a22a123), 0x2a123u);
}

TEST(ParseProcMaps, EmptyAndGarbageInput) {
  EXPECT_TRUE(parse_proc_maps("").empty());
  EXPECT_TRUE(parse_proc_maps("hello\nworld\n").empty());
  EXPECT_TRUE(parse_proc_maps("1000-2000 r-xp zz 00:00 0 /x\n").empty());
  // No trailing newline is fine.
  EXPECT_EQ(parse_proc_maps("1000-2000 r-xp 00000000 00:00 0 /x").size(), 1u);
}

}  // namespace
}  // namespace stackwatch::symbolizer
