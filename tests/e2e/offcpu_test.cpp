// End to end: off-CPU stacks, with the time each thread stayed off the CPU.
#include <set>

#include "e2e_support.h"

namespace stackwatch::testing {
namespace {

struct OffEntry {
  std::vector<std::string> functions;  // innermost first
  std::vector<bool> kernel;
  std::string state;
  uint64_t off_ns = 0;
  uint64_t count = 0;
  uint32_t tid = 0;
};

std::vector<OffEntry> read_off_entries(const nlohmann::json& doc) {
  std::vector<OffEntry> out;
  for (auto& [tgid, proc] : doc.items()) {
    if (tgid.starts_with("_")) continue;
    for (auto& [tid, entries] : proc["pids"].items())
      for (auto& [id, e] : entries.items()) {
        if (e["kind"] != "off") continue;
        OffEntry o;
        o.tid = static_cast<uint32_t>(std::stoul(tid));
        o.state = e.value("state", "");
        o.off_ns = e["off_ns"].get<uint64_t>();
        o.count = e["count"].get<uint64_t>();
        for (auto& f : e["frames"]) {
          o.functions.push_back(f["function"].get<std::string>());
          o.kernel.push_back(f.value("kernel", false));
        }
        out.push_back(std::move(o));
      }
  }
  return out;
}

// Index of the first frame whose function contains `needle` (-1 if none).
int find_frame(const OffEntry& e, const std::string& needle, bool kernel) {
  for (size_t i = 0; i < e.functions.size(); ++i)
    if (e.kernel[i] == kernel && e.functions[i].find(needle) != std::string::npos) return static_cast<int>(i);
  return -1;
}

ProcessResult record_scenario(const std::string& mode, const std::string& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {stackwatch_bin(), "record", "--off-cpu", "-i", "1", "-o", out};
  argv.insert(argv.end(), extra.begin(), extra.end());
  for (const std::string& a : {std::string("--"), fixture("e2e_offcpu"), mode}) argv.push_back(a);
  return run_process(argv, 90);
}

TEST(OffCpu, SleeperShowsTheSleepPathAndItsTime) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("off_sleep");
  auto r = record_scenario("sleep", out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto entries = read_off_entries(read_json(out + "/stacks.json"));
  uint64_t sleeper_ns = 0;
  bool kernel_path = false;
  for (const auto& e : entries) {
    int user = find_frame(e, "sleeper", false);
    if (user < 0) continue;
    sleeper_ns += e.off_ns;
    // The kernel's sleep path sits on top of (before, innermost first) the user function.
    int k = find_frame(e, "nanosleep", true);
    if (k >= 0 && k < user && e.state == "interruptible") kernel_path = true;
  }
  EXPECT_TRUE(kernel_path) << "nanosleep kernel frames under sleeper()";
  // 20 x 50 ms = 1 s, within 20%.
  EXPECT_GE(sleeper_ns, 800'000'000u);
  EXPECT_LE(sleeper_ns, 1'200'000'000u);
  auto folded = read_folded(out + "/offcpu.folded");
  uint64_t us = 0;
  for (const auto& s : folded)
    if (has_frame(s, "sleeper")) us += s.weight;
  EXPECT_NEAR(double(us), double(sleeper_ns) / 1000, double(sleeper_ns) / 1000 * 0.01) << "offcpu.folded is in us";
}

TEST(OffCpu, LockContentionShowsFutexWaitsUnderTheContendedFunction) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("off_lock");
  // Waits for a ~2 ms critical section are often shorter than the default
  // 1 ms floor on a busy machine: count them all.
  auto r = record_scenario("lock", out, {"--min-block-us", "50"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  uint64_t futex_ns = 0;
  std::set<uint32_t> threads;
  for (const auto& e : read_off_entries(read_json(out + "/stacks.json"))) {
    int user = find_frame(e, "contended_update", false);
    int k = find_frame(e, "futex", true);
    if (user >= 0 && k >= 0 && k < user) {
      futex_ns += e.off_ns;
      threads.insert(e.tid);
    }
  }
  EXPECT_GT(futex_ns, 200'000'000u) << "three threads on one lock wait a lot";
  EXPECT_GE(threads.size(), 2u);
}

TEST(OffCpu, FdatasyncIsUninterruptibleTimeUnderTheCaller) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("off_fsync");
  // Fast virtual disks finish a flush in well under a millisecond: count every block.
  auto r = record_scenario("fsync", out, {"--min-block-us", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  uint64_t d_ns = 0, all_ns = 0;
  for (const auto& e : read_off_entries(read_json(out + "/stacks.json"))) {
    int user = find_frame(e, "flush_journal", false);
    if (user < 0) continue;
    all_ns += e.off_ns;
    int k = find_frame(e, "sync", true);
    if (e.state == "uninterruptible" && k >= 0 && k < user) d_ns += e.off_ns;
  }
  EXPECT_GT(d_ns, 0u) << "fdatasync waits uninterruptibly";
  EXPECT_GE(double(d_ns) / double(all_ns), 0.5) << "most of flush_journal's off-CPU time is the disk";
}

TEST(OffCpu, ShortLivedThreadsAreRecordedAndLeaveNoEntries) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("off_threads");
  auto r = record_scenario("threads", out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = read_json(out + "/stacks.json");
  std::set<uint32_t> nappers;
  for (const auto& e : read_off_entries(doc))
    if (find_frame(e, "short_nap", false) >= 0) nappers.insert(e.tid);
  EXPECT_GE(nappers.size(), 150u) << "most of the 200 threads' naps are recorded";
  // The BPF map of threads currently off-CPU holds no entry for a dead thread.
  ASSERT_TRUE(doc["_stackwatch"].contains("stale_thread_entries"));
  EXPECT_EQ(doc["_stackwatch"]["stale_thread_entries"].get<uint64_t>(), 0u);
}

}  // namespace
}  // namespace stackwatch::testing
