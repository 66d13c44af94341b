// Folded stacks: parsing ours, stackcollapse-perf.pl's and bpftrace's,
// escaping, and the outermost-first order of what we write.
#include <gtest/gtest.h>

#include <sstream>

#include "flamegraph/bpftrace_stacks.h"
#include "flamegraph/flamegraph.h"
#include "recording/error.h"

namespace stackwatch::flamegraph {
namespace {

std::vector<FoldedStack> parse(const std::string& text) {
  std::istringstream in(text);
  return parse_folded(in);
}

using Frames = std::vector<std::string>;

TEST(FoldedParse, OurLinesOutermostFirst) {
  auto s = parse("redis-server;main;aeMain;aeProcessEvents;epoll_wait_[k] 17\nredis-server;main 3\n");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].frames, (Frames{"redis-server", "main", "aeMain", "aeProcessEvents", "epoll_wait_[k]"}));
  EXPECT_EQ(s[0].weight, 17u);
  EXPECT_EQ(s[1].frames, (Frames{"redis-server", "main"}));
  EXPECT_EQ(s[1].weight, 3u);
}

TEST(FoldedParse, StackcollapsePerfLinesWithSpacesAndAnnotations) {
  auto s = parse(
      "swapper;secondary_startup_64_[k];cpu_startup_entry_[k];do_idle_[k] 132\n"
      "java-1234/1240;start_thread;JavaThread::run() [clone .cold];Interpreter_[j];foo_[i] 8\r\n"
      "perl;Perl_pp_entersub;operator new(unsigned long);[unknown] 3\n");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].frames, (Frames{"swapper", "secondary_startup_64_[k]", "cpu_startup_entry_[k]", "do_idle_[k]"}));
  EXPECT_EQ(s[0].weight, 132u);
  EXPECT_EQ(s[1].frames,
            (Frames{"java-1234/1240", "start_thread", "JavaThread::run() [clone .cold]", "Interpreter_[j]", "foo_[i]"}));
  EXPECT_EQ(s[1].weight, 8u);
  EXPECT_EQ(s[2].frames, (Frames{"perl", "Perl_pp_entersub", "operator new(unsigned long)", "[unknown]"}));
}

TEST(FoldedParse, SkipsBlankAndCommentLinesAndRoundsFractions) {
  auto s = parse("# comment\n\n   \na;b 2.9\n");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].weight, 2u);
}

TEST(FoldedParse, LineWithoutWeightNamesTheLine) {
  try {
    parse("a;b 1\na;b;c\n");
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse("a;b x12\n"), Error);
}

TEST(FoldedEscape, SeparatorAndControlCharacters) {
  EXPECT_EQ(escape_frame("a;b"), "a:b");
  EXPECT_EQ(escape_frame("line\nbreak\ttab"), "line break tab");
  EXPECT_EQ(escape_frame("operator new(unsigned long)"), "operator new(unsigned long)");
  EXPECT_EQ(escape_frame(""), "[unknown]");
}

TEST(FoldedWrite, RoundTripsNamesWithSpacesAndSemicolons) {
  std::vector<FoldedStack> in = {
      {{"my prog", "ns::f(int, char)", "g;h"}, 5},
      {{"my prog", "zero"}, 0},  // skipped
      {{"x"}, 1},
  };
  std::string text = folded_to_string(in);
  EXPECT_EQ(text, "my prog;ns::f(int, char);g:h 5\nx 1\n");
  auto back = parse(text);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].frames, (Frames{"my prog", "ns::f(int, char)", "g:h"}));
  EXPECT_EQ(back[0].weight, 5u);
}

TEST(FoldSamples, OutermostFirstWithCommAndAnnotations) {
  StackSample s;
  s.process_name = "server";
  s.count = 4;
  Frame k;  // innermost: a kernel frame
  k.function = "do_sys_poll";
  k.kernel = true;
  Frame inl;
  inl.function = "inner_helper";
  inl.inlined = true;
  inl.module = "/usr/bin/server";
  Frame outer;
  outer.function = "serve;loop";  // ';' must not split the frame
  outer.module = "/usr/bin/server";
  Frame unnamed;
  unnamed.module = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  unnamed.module_offset = 0x2a3f0;
  s.frames = {k, inl, outer, unnamed};
  auto folded = fold_samples({s});
  ASSERT_EQ(folded.size(), 1u);
  EXPECT_EQ(folded[0].frames, (Frames{"server", "libc.so.6+0x2a3f0", "serve:loop", "inner_helper_[i]", "do_sys_poll_[k]"}));
  EXPECT_EQ(folded[0].weight, 4u);

  StackSample off = s;
  off.kind = StackKind::kOffCpu;
  off.off_ns = 2'500'600;  // 2500.6 us
  EXPECT_EQ(fold_samples({off})[0].weight, 2501u);
}

TEST(BpftraceStacks, MultiLineKeysBecomeOutermostFirstStacks) {
  std::istringstream in(
      "Attaching 1 probe...\n\n"
      "@[\n"
      "    do_syscall_64+56\n"
      "    entry_SYSCALL_64_after_hwframe+99\n"
      ", \n"
      "    __libc_write+20\n"
      "    main+0x2a\n"
      ", myprog]: 17\n"
      "@[\n"
      "    spin+12\n"
      "    main+40\n"
      "]: 3\n");
  auto s = parse_bpftrace_stacks(in);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].frames,
            (Frames{"myprog", "main", "__libc_write", "entry_SYSCALL_64_after_hwframe", "do_syscall_64"}));
  EXPECT_EQ(s[0].weight, 17u);
  EXPECT_EQ(s[1].frames, (Frames{"main", "spin"}));
  EXPECT_EQ(s[1].weight, 3u);
}

TEST(BpftraceStacks, UnterminatedKeyIsAnError) {
  std::istringstream in("@[\n    main+1\n");
  EXPECT_THROW(parse_bpftrace_stacks(in), Error);
}

TEST(FrameKinds, AnnotationsAndKnownNames) {
  EXPECT_EQ(classify_frame("do_idle_[k]"), FrameKind::kKernel);
  EXPECT_EQ(classify_frame("foo_[i]"), FrameKind::kInlined);
  EXPECT_EQ(classify_frame("Interpreter_[j]"), FrameKind::kJit);
  EXPECT_EQ(classify_frame("entry_SYSCALL_64_after_hwframe"), FrameKind::kKernel);
  EXPECT_EQ(classify_frame("do_syscall_64+56"), FrameKind::kKernel);
  EXPECT_EQ(classify_frame("schedule"), FrameKind::kKernel);
  EXPECT_EQ(classify_frame("scheduler_loop"), FrameKind::kUser);
  EXPECT_EQ(classify_frame("libc.so.6+0x2a3f0"), FrameKind::kLibrary);
  EXPECT_EQ(classify_frame("[libstdc++.so.6.0.30]"), FrameKind::kLibrary);
  EXPECT_EQ(classify_frame("[unknown]"), FrameKind::kUnknown);
  EXPECT_EQ(classify_frame("[perf-4242.map]"), FrameKind::kJit);
  EXPECT_EQ(classify_frame("std::vector<int>::push_back(int const&)"), FrameKind::kUser);
  EXPECT_EQ(strip_annotation("foo_[k]"), "foo");
  EXPECT_EQ(strip_annotation("foo"), "foo");
}

}  // namespace
}  // namespace stackwatch::flamegraph
