// FrameList: frames reused across lookups, strings copied only from a new source.
#include "symbolizer/frame_list.h"

#include <gtest/gtest.h>

namespace stackwatch::symbolizer {
namespace {

TEST(FrameList, ReusedFramesTakeEachAssignedStringAndNothingStale) {
  const std::string f1 = "outer_entry", f2 = "inner_step", file = "/src/a.cpp", none;
  FrameList list;
  Frame& a = list.append_reusing();
  a.line = 7;
  a.inlined = true;
  a.unknown_reason = "why";
  list.assign(0, FrameList::kFunction, f1);
  list.assign(0, FrameList::kFile, file);
  EXPECT_EQ(list.frames()[0].function, "outer_entry");
  EXPECT_EQ(list.frames()[0].file, "/src/a.cpp");

  // The next lookup reuses the slot: every field but the sourced strings is
  // blank again, and those take what is assigned.
  list.clear();
  Frame& b = list.append_reusing();
  EXPECT_EQ(b.line, 0u);
  EXPECT_FALSE(b.inlined);
  EXPECT_TRUE(b.unknown_reason.empty());
  list.assign(0, FrameList::kFunction, f2);
  list.assign(0, FrameList::kFile, none);
  EXPECT_EQ(list.frames()[0].function, "inner_step");
  EXPECT_EQ(list.frames()[0].file, "");

  // append() blanks the slot and forgets its sources: assigning the same
  // source again copies it again.
  list.clear();
  Frame& c = list.append();
  EXPECT_TRUE(c.function.empty());
  list.assign(0, FrameList::kFunction, f2);
  EXPECT_EQ(list.frames()[0].function, "inner_step");

  // move_to hands the frames over and starts afresh.
  std::vector<Frame> out;
  list.move_to(out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].function, "inner_step");
  EXPECT_EQ(list.size(), 0u);
  Frame& d = list.append_reusing();
  EXPECT_TRUE(d.function.empty());
}

}  // namespace
}  // namespace stackwatch::symbolizer
