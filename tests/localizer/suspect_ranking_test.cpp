// Suspect ranking: the deepest function that accounts for the growth comes
// first (not main or the loop that contain it), libc growth is charged to
// its user caller, rates are per second so interval sets of different
// lengths compare, and the evidence says where the time went.
#include "localize/suspect_ranking.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "synthetic_stacks.h"

namespace stackwatch::localize {
namespace {

using namespace testing;
constexpr double kHz = 49;

std::vector<Frame> request_path(std::initializer_list<Frame> below) {
  std::vector<Frame> outer = {user("main"), user("loop"), user("handler")};
  outer.insert(outer.end(), below.begin(), below.end());
  return std::vector<Frame>(outer.rbegin(), outer.rend());
}

StackSample idle(uint64_t ns) {
  return off_cpu(with_kernel({user("main"), user("loop"), libc("epoll_wait")},
                             {kern("do_syscall_64"), kern("do_epoll_wait"), kern("ep_poll"), kern("schedule")}),
                 ns, OffCpuState::kInterruptible, 100);
}

bool ranked(const std::vector<Suspect>& s, const std::string& name) {
  return std::any_of(s.begin(), s.end(), [&](const Suspect& x) { return x.function.name == name; });
}

TEST(SuspectRanking, DeepestGrownFunctionFirstNotItsCallers) {
  // Baseline 10 s: slow_fn takes 2% of a CPU, the loop idles in epoll_wait.
  std::vector<StackSample> base = {on_cpu(request_path({user("slow_fn")}), 10), on_cpu(request_path({}), 20),
                                   idle(9'000'000'000)};
  // Anomaly 5 s: slow_fn spins (82% of a CPU), the loop idles less.
  std::vector<StackSample> anom = {on_cpu(request_path({user("slow_fn")}), 200), on_cpu(request_path({}), 10),
                                   idle(1'000'000'000)};
  RankOptions o;
  o.sample_hz = kHz;
  auto s = rank_suspects(base, 10, anom, 5, ProcessFilter{100, ""}, o);
  ASSERT_FALSE(s.empty());
  EXPECT_EQ(s[0].function.name, "slow_fn");
  EXPECT_EQ(s[0].function.module, "app");
  EXPECT_EQ(s[0].module_path, "/opt/app/bin/app");
  EXPECT_TRUE(s[0].probeable);
  EXPECT_EQ(s[0].process, "app");
  EXPECT_EQ(s[0].tgid, 100u);
  EXPECT_NEAR(s[0].baseline_on, 10 / kHz / 10, 1e-9);
  EXPECT_NEAR(s[0].anomaly_on, 200 / kHz / 5, 1e-9);
  EXPECT_NEAR(s[0].score, 200 / kHz / 5 - 10 / kHz / 10, 1e-9);
  EXPECT_GT(s[0].share, 0.99);
  EXPECT_FALSE(ranked(s, "main"));
  EXPECT_FALSE(ranked(s, "loop"));
  EXPECT_FALSE(ranked(s, "handler"));
  EXPECT_TRUE(s[0].blocked.empty());
}

TEST(SuspectRanking, LibcGrowthIsChargedToTheUserFunctionThatCallsIt) {
  auto fsync_stack = [](uint64_t ns) {
    return off_cpu(with_kernel({user("main"), user("loop"), user("handle_request"), libc("fdatasync")},
                               fdatasync_kernel_path()),
                   ns, OffCpuState::kUninterruptible, 10);
  };
  auto steady_cpu = [](uint64_t n) { return on_cpu(request_path({user("parse")}), n); };
  std::vector<StackSample> base = {fsync_stack(100'000'000), steady_cpu(98), idle(9'000'000'000)};
  std::vector<StackSample> anom = {fsync_stack(4'000'000'000), steady_cpu(49), idle(800'000'000)};
  RankOptions o;
  o.sample_hz = kHz;
  auto s = rank_suspects(base, 10, anom, 5, ProcessFilter{0, "app"}, o);
  ASSERT_FALSE(s.empty());
  EXPECT_EQ(s[0].function.name, "handle_request");
  EXPECT_TRUE(s[0].probeable);
  EXPECT_FALSE(ranked(s, "fdatasync"));
  EXPECT_FALSE(ranked(s, "main"));
  EXPECT_GT(s[0].share, 0.95);
  constexpr size_t kUnint = static_cast<size_t>(OffCpuState::kUninterruptible);
  EXPECT_NEAR(s[0].baseline_off[kUnint], 0.01, 1e-9);
  EXPECT_NEAR(s[0].anomaly_off[kUnint], 0.8, 1e-9);
  // Evidence: the grown path goes through fdatasync into the kernel, and the
  // blocked time sits under jbd2_log_wait_commit.
  ASSERT_GE(s[0].grown_path.size(), 3u);
  EXPECT_EQ(s[0].grown_path[0], "fdatasync");
  EXPECT_NE(std::find(s[0].grown_path.begin(), s[0].grown_path.end(), "jbd2_log_wait_commit"), s[0].grown_path.end());
  ASSERT_EQ(s[0].blocked.size(), 1u);
  EXPECT_EQ(s[0].blocked[0].user_frame, "fdatasync");
  EXPECT_NEAR(s[0].blocked[0].growth(), 0.79, 1e-9);
}

TEST(SuspectRanking, TruncatedStacksEndingInLibcAreChargedToItsOnlyCaller) {
  // Half of the blocked stacks lost their user frames above fdatasync (an
  // unwinder gave up in libc); the complete half shows who calls it.
  auto complete = [](uint64_t ns) {
    return off_cpu(with_kernel({user("main"), user("loop"), user("handle_request"), user("slow_part"), libc("fdatasync")},
                               fdatasync_kernel_path()),
                   ns, OffCpuState::kUninterruptible, 10);
  };
  auto truncated = [](uint64_t ns) {
    Frame garbage;
    garbage.module = "[unknown]";
    garbage.module_offset = 0x706d742f00706565;
    return off_cpu(with_kernel({garbage, libc("fdatasync")}, fdatasync_kernel_path()), ns,
                   OffCpuState::kUninterruptible, 10);
  };
  std::vector<StackSample> base = {complete(10'000'000), truncated(10'000'000), idle(9'000'000'000)};
  std::vector<StackSample> anom = {complete(1'500'000'000), truncated(2'000'000'000), idle(1'000'000'000)};
  auto s = rank_suspects(base, 10, anom, 5, ProcessFilter{}, RankOptions{});
  ASSERT_FALSE(s.empty());
  EXPECT_EQ(s[0].function.name, "slow_part");
  EXPECT_FALSE(ranked(s, "fdatasync"));
  EXPECT_NEAR(s[0].score, (3'500'000'000.0 / 5 - 20'000'000.0 / 10) / 1e9, 1e-9);
  EXPECT_GT(s[0].share, 0.99);
}

TEST(SuspectRanking, GrowthSpreadOverCalleesStaysWithTheCaller) {
  std::vector<StackSample> base = {on_cpu(request_path({user("a")}), 10), on_cpu(request_path({user("b")}), 10),
                                   on_cpu(request_path({user("c")}), 10)};
  std::vector<StackSample> anom = {on_cpu(request_path({user("a")}), 110), on_cpu(request_path({user("b")}), 110),
                                   on_cpu(request_path({user("c")}), 110)};
  RankOptions o;
  o.sample_hz = kHz;
  auto s = rank_suspects(base, 10, anom, 10, ProcessFilter{}, o);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].function.name, "handler");  // accounts for all three
  EXPECT_NEAR(s[0].share, 2.0 / 3, 1e-9);
  EXPECT_NEAR(s[1].share, 1.0 / 3, 1e-9);
  EXPECT_FALSE(ranked(s, "loop"));
}

TEST(SuspectRanking, RatesArePerSecondSoDifferentLengthsCompare) {
  // Same rates over 10 s and 2 s: nothing changed.
  std::vector<StackSample> base = {on_cpu(request_path({user("slow_fn")}), 100), idle(5'000'000'000)};
  std::vector<StackSample> anom = {on_cpu(request_path({user("slow_fn")}), 20), idle(1'000'000'000)};
  EXPECT_TRUE(rank_suspects(base, 10, anom, 2, ProcessFilter{}).empty());
}

TEST(SuspectRanking, TopAndMinimumShareBoundTheList) {
  std::vector<StackSample> base, anom;
  for (int i = 0; i < 8; ++i) {
    std::string name = "f" + std::to_string(i);
    anom.push_back(on_cpu(request_path({user(name)}), 100));
  }
  anom.push_back(on_cpu(request_path({user("tiny")}), 4));  // < 5% of the growth
  RankOptions o;
  o.top = 5;
  auto s = rank_suspects(base, 10, anom, 10, ProcessFilter{}, o);
  EXPECT_EQ(s.size(), 5u);
  EXPECT_FALSE(ranked(s, "tiny"));
  // handler accounts for the growth of all eight; ties below it are broken
  // by name, so the order is stable.
  EXPECT_EQ(s[0].function.name, "handler");
  EXPECT_EQ(s[1].function.name, "f0");
  EXPECT_EQ(s[4].function.name, "f3");
}

TEST(SuspectRanking, JsonRoundTrip) {
  std::vector<StackSample> anom = {off_cpu(
      with_kernel({user("main"), user("handle_request"), libc("fdatasync")}, fdatasync_kernel_path()), 1'000'000'000,
      OffCpuState::kUninterruptible)};
  auto s = rank_suspects({}, 5, anom, 5, ProcessFilter{});
  ASSERT_EQ(s.size(), 1u);
  Suspect back = suspect_from_json(s[0].to_json());
  EXPECT_EQ(back.to_json(), s[0].to_json());
  EXPECT_EQ(back.function.name, "handle_request");
  ASSERT_EQ(back.blocked.size(), 1u);
  EXPECT_EQ(back.blocked[0].kernel_frames, s[0].blocked[0].kernel_frames);
}

}  // namespace
}  // namespace stackwatch::localize
