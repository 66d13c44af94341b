// End to end: `stackwatch record` on real programs, on-CPU.
#include <signal.h>
#include <sys/wait.h>

#include <map>
#include <set>

#include "e2e_support.h"

namespace stackwatch::testing {
namespace {

uint64_t total(const std::vector<flamegraph::FoldedStack>& stacks) {
  uint64_t n = 0;
  for (const auto& s : stacks) n += s.weight;
  return n;
}

TEST(OnCpu, KnownCallTreeSharesAndOrder) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("calltree");
  int pid = start_background({fixture("e2e_calltree"), "30"});
  ASSERT_GT(pid, 0);
  auto r = run_process({stackwatch_bin(), "record", "-p", std::to_string(pid), "-F", "99", "-i", "1", "-d", "6",
                        "--on-cpu", "-o", out},
                       60);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto stacks = read_folded(out + "/oncpu.folded");
  uint64_t all = 0, in_b = 0, in_c = 0, ordered_b = 0;
  for (const auto& s : stacks) {
    ASSERT_EQ(s.frames.front(), "e2e_calltree") << "only the -p process is recorded";
    all += s.weight;
    if (has_frame(s, "b")) {
      in_b += s.weight;
      int m = frame_index(s, "main"), a = frame_index(s, "a"), b = frame_index(s, "b");
      if (m >= 0 && a > m && b > a) ordered_b += s.weight;
    }
    if (has_frame(s, "c")) in_c += s.weight;
  }
  // 99 Hz for 6 s on one busy thread: about 600 samples, fewer when the
  // machine is shared (the shares, not the count, are the point).
  ASSERT_GT(all, 100u);
  double share_b = double(in_b) / all, share_c = double(in_c) / all;
  EXPECT_GE(share_b, 0.55) << "b's share";
  EXPECT_GE(share_c, 0.20) << "c's share";
  EXPECT_LE(share_c, 0.40) << "c's share";
  // Frame pointers everywhere: b's samples show main -> a -> b in that order.
  EXPECT_GE(double(ordered_b) / in_b, 0.95);

  // stacks.json has the stack_count shape and agrees with the folded file.
  auto doc = read_json(out + "/stacks.json");
  ASSERT_TRUE(doc.contains(std::to_string(pid)));
  EXPECT_EQ(doc[std::to_string(pid)]["name"], "e2e_calltree");
  uint64_t json_count = 0;
  for (auto& [tid, entries] : doc[std::to_string(pid)]["pids"].items())
    for (auto& [id, e] : entries.items()) {
      json_count += e["count"].get<uint64_t>();
      EXPECT_TRUE(e["trace"].is_array());
      EXPECT_TRUE(e["label"].is_null());
      EXPECT_EQ(e["kind"], "on");
      for (auto& t : e["trace"]) EXPECT_EQ(t.get<std::string>().rfind("0x", 0), 0u);
    }
  EXPECT_EQ(json_count, all);
  EXPECT_TRUE(doc["_stackwatch"]["dropped"].contains("total"));
  // The interval report prints stacks the way stackcount did.
  EXPECT_NE(r.out.find("e2e_calltree (" + std::to_string(pid)), std::string::npos) << r.out;
}

TEST(OnCpu, KernelFramesSitUnderUserFrames) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("syscalls");
  auto r = run_process({stackwatch_bin(), "record", "-F", "99", "-i", "1", "--on-cpu", "-o", out, "--",
                        fixture("e2e_syscalls"), "4"},
                       60);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto stacks = read_folded(out + "/oncpu.folded");
  uint64_t user = 0, with_kernel = 0;
  for (const auto& s : stacks) {
    // Debian's libc has no frame pointers, so read(2)'s caller may be
    // skipped by the kernel's walker (the no-frame-pointer issue); main is
    // always there.
    int u = frame_index(s, "main");
    if (u < 0) continue;
    user += s.weight;
    // Kernel frames ("_[k]") come after (are called from) the user frame.
    bool kernel_after = false;
    for (size_t i = static_cast<size_t>(u) + 1; i < s.frames.size(); ++i)
      if (s.frames[i].size() > 4 && s.frames[i].ends_with("_[k]")) kernel_after = true;
    for (int i = 0; i < u; ++i) EXPECT_FALSE(s.frames[i].ends_with("_[k]")) << "no kernel frame above user code";
    if (kernel_after) with_kernel += s.weight;
  }
  ASSERT_GT(user, 100u);
  EXPECT_GE(double(with_kernel) / user, 0.5) << "most time is in read(2) in the kernel";
}

TEST(OnCpu, CommandChildrenAndThreadsAreRecorded) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("forker");
  auto r = run_process({stackwatch_bin(), "record", "-F", "99", "-i", "1", "--on-cpu", "-o", out, "--",
                        fixture("e2e_forker"), "3"},
                       60);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("the command exited"), std::string::npos) << r.out;
  auto doc = read_json(out + "/stacks.json");
  std::map<std::string, std::set<std::string>> functions_by_tgid;  // tgid -> functions
  std::map<std::string, std::set<std::string>> tids_by_tgid;
  for (auto& [tgid, proc] : doc.items()) {
    if (tgid.starts_with("_")) continue;
    for (auto& [tid, entries] : proc["pids"].items()) {
      tids_by_tgid[tgid].insert(tid);
      for (auto& [id, e] : entries.items())
        for (auto& f : e["frames"]) functions_by_tgid[tgid].insert(f["function"].get<std::string>());
    }
  }
  std::string parent, child;
  for (auto& [tgid, fns] : functions_by_tgid) {
    if (fns.count("parent_spin")) parent = tgid;
    if (fns.count("child_spin")) child = tgid;
  }
  ASSERT_FALSE(parent.empty()) << "the command itself";
  ASSERT_FALSE(child.empty()) << "its child, after fork and exec";
  EXPECT_NE(parent, child);
  // Named after the exec (it ran a file named fchild.PID), not after its parent.
  EXPECT_EQ(doc[child]["name"].get<std::string>().rfind("fchild.", 0), 0u) << doc[child]["name"];
  EXPECT_EQ(doc[parent]["name"], "e2e_forker");
  EXPECT_TRUE(functions_by_tgid[parent].count("thread_spin")) << "its thread";
  EXPECT_GE(tids_by_tgid[parent].size(), 2u) << "main thread and the spawned thread";
  // Nothing but the command's tree is recorded.
  for (auto& [tgid, fns] : functions_by_tgid)
    EXPECT_TRUE(tgid == parent || tgid == child) << "unexpected process " << tgid;
}

TEST(OnCpu, DropsAreCountedAndReported) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("drops");
  // Room for 2 stacks per interval in the kernel's counts map (frame-pointer
  // mode aggregates there) while the fixture has more: the rest must be
  // counted as dropped, not vanish.
  auto r = run_process({stackwatch_bin(), "record", "-F", "499", "-i", "1", "--on-cpu", "--call-graph", "fp",
                        "--max-stacks", "2", "-o", out, "--", fixture("e2e_forker"), "2"},
                       60);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = read_json(out + "/stacks.json");
  EXPECT_GT(doc["_stackwatch"]["dropped"]["total"].get<uint64_t>(), 0u);
  EXPECT_NE(r.out.find("dropped"), std::string::npos);
}

TEST(OnCpu, SigtermWritesTheFinalFiles) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("sigterm");
  int target = start_background({fixture("e2e_calltree"), "30"});
  // A long interval: nothing would be written before the signal but for the final flush.
  int pid = start_background({stackwatch_bin(), "record", "-p", std::to_string(target), "-F", "99", "-i", "60",
                              "--on-cpu", "-o", out});
  sleep(3);
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  kill(target, SIGKILL);
  waitpid(target, nullptr, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  auto stacks = read_folded(out + "/oncpu.folded");
  EXPECT_GT(total(stacks), 100u) << "the samples of the interrupted interval are in the file";
}

}  // namespace
}  // namespace stackwatch::testing
