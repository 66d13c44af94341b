// End to end: complete user stacks in code built without frame pointers
// (DWARF unwinding of copied stacks), through the fixture's own shared
// library and through libc's qsort, on- and off-CPU, on two threads.
#include <map>
#include <set>

#include "e2e_support.h"

namespace stackwatch::testing {
namespace {

// The chain, outermost first, after the thread's entry function.
const std::vector<std::string> kChain = {"level1", "level2", "level3", "lib_outer", "lib_inner", "compare", "bottom"};

// True when frames hold entry, then kChain in order (other frames, such as
// libc's qsort internals, may sit between them).
bool has_full_chain(const std::vector<std::string>& frames, const std::string& entry) {
  size_t want = 0;
  bool seen_entry = false;
  for (const std::string& f : frames) {
    if (!seen_entry) {
      seen_entry = f == entry;
      continue;
    }
    if (want < kChain.size() && f == kChain[want]) ++want;
  }
  return seen_entry && want == kChain.size();
}

struct ThreadStacks {
  uint64_t total = 0;     // samples (on) or ns (off)
  uint64_t complete = 0;  // of those with the full chain
};

// Per thread of the fixture: how much of its weight has the full chain.
std::map<uint32_t, ThreadStacks> chain_shares(const nlohmann::json& doc, const std::string& kind) {
  std::map<uint32_t, ThreadStacks> out;
  for (auto& [tgid, proc] : doc.items()) {
    if (tgid.starts_with("_")) continue;
    for (auto& [tid, entries] : proc["pids"].items())
      for (auto& [id, e] : entries.items()) {
        if (e["kind"] != kind) continue;
        std::vector<std::string> outer_first;
        for (auto it = e["frames"].rbegin(); it != e["frames"].rend(); ++it)
          outer_first.push_back((*it)["function"].get<std::string>());
        uint64_t w = kind == "on" ? e["count"].get<uint64_t>() : e["off_ns"].get<uint64_t>();
        auto& t = out[static_cast<uint32_t>(std::stoul(tid))];
        t.total += w;
        if (has_full_chain(outer_first, "main") || has_full_chain(outer_first, "thread_main")) t.complete += w;
      }
  }
  return out;
}

ProcessResult record_chain(const std::string& fixture_name, const std::string& mode, const std::string& kind_flag,
                           const std::string& call_graph, const std::string& out) {
  return run_process({stackwatch_bin(), "record", kind_flag, "--call-graph", call_graph, "-F", "99", "-i", "2", "-o",
                      out, "--", fixture(fixture_name), mode, "4"},
                     90);
}

TEST(Unwind, OnCpuStacksAreCompleteWithoutFramePointers) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("chain_on");
  auto r = record_chain("e2e_chain_nofp", "spin", "--on-cpu", "dwarf", out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto threads = chain_shares(read_json(out + "/stacks.json"), "on");
  ASSERT_EQ(threads.size(), 2u) << "the main thread and the second thread";
  for (auto& [tid, t] : threads) {
    ASSERT_GT(t.total, 50u) << "thread " << tid;
    EXPECT_GE(double(t.complete) / t.total, 0.95) << "thread " << tid << ": " << t.complete << " of " << t.total;
  }
}

// At 999 Hz the copies (up to 17 KiB each, on both CPUs) are taken out of
// the ring by StackCopies' reader thread, not only when the recording's
// thread comes round (every 100 ms, longer while it symbolizes): the ring is
// 1 MiB instead of 16 MiB (resident twice over: 60 MB of RSS before), none
// is dropped, and the queue holds only what waits (0.3 MB here; it was two
// vectors kept at twice their largest backlog).
// The reader sleeps until BPF finds the ring a quarter full, or 100 ms: 41
// wake-ups in this recording (it read every 10 ms before: 400). Copies stop
// at the top each thread's unwinding needs (stack_tops): 1.45 KB a record
// here, 3.96 KB copied to the end of the stack mapping, with the thread
// block and TLS; none turns out too short, and the stacks stay complete.
TEST(Unwind, AReaderThreadEmptiesTheCopyRingAt999Hz) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("chain_999");
  auto r = run_process({stackwatch_bin(), "record", "--on-cpu", "--call-graph", "dwarf", "-F", "999", "-i", "1", "-o", out,
                        "--", fixture("e2e_chain_nofp"), "spin", "4"},
                       90);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = read_json(out + "/stacks.json");
  const auto& unwind = doc["_stackwatch"]["unwind"];
  uint64_t stacks = unwind["stacks"].get<uint64_t>();
  ASSERT_GT(stacks, 2000u) << "two spinning threads at 999 Hz for 4 s";
  EXPECT_GE(double(unwind["complete"].get<uint64_t>()) / stacks, 0.95);
  // The recording's thread reads the ring too, every 100 ms (60% were the
  // reader's here).
  EXPECT_GT(unwind["queued_by_reader"].get<uint64_t>(), stacks / 4) << "the reader took copies out";
  EXPECT_LE(doc["_stackwatch"]["dropped"]["stack_copy_ring_full"].get<uint64_t>(), stacks / 100);
  EXPECT_GT(unwind["max_queued_bytes"].get<uint64_t>(), 0u);
  EXPECT_LT(unwind["max_queued_bytes"].get<uint64_t>(), uint64_t{8} << 20) << "the queue kept up";
  EXPECT_LT(r.max_rss_kb, 36 * 1024) << "peak RSS in KiB (24-25 MB here; 60 MB with the 16 MiB ring)";
  EXPECT_LT(unwind["reader_wakeups"].get<uint64_t>(), 200u) << "about 10 a second, not one every 10 ms";
  EXPECT_GT(unwind["trimmed_copies"].get<uint64_t>(), stacks * 9 / 10) << "copies stop at the threads' stack tops";
  EXPECT_EQ(unwind["trimmed_too_short"].get<uint64_t>(), 0u);
  EXPECT_LT(unwind["copied_bytes"].get<uint64_t>() / stacks, 2500u) << "bytes a record (3955 copied whole)";
}

TEST(Unwind, FramePointerWalkCannotSeeTheChain) {
  REQUIRE_ROOT();
  // The control: the kernel's frame-pointer walk of the same binary does not
  // reach the chain, so the test above really needs DWARF unwinding.
  std::string out = fresh_dir("chain_on_fp");
  auto r = record_chain("e2e_chain_nofp", "spin", "--on-cpu", "fp", out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  uint64_t total = 0, complete = 0;
  for (auto& [tid, t] : chain_shares(read_json(out + "/stacks.json"), "on")) {
    total += t.total;
    complete += t.complete;
  }
  ASSERT_GT(total, 50u);
  EXPECT_LT(double(complete) / total, 0.5);
}

TEST(Unwind, OffCpuStacksAreCompleteUnderTheKernelFrames) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("chain_off");
  auto r = record_chain("e2e_chain_nofp", "sleep", "--off-cpu", "dwarf", out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = read_json(out + "/stacks.json");
  auto threads = chain_shares(doc, "off");
  ASSERT_GE(threads.size(), 2u);
  uint64_t total = 0, complete = 0;
  for (auto& [tid, t] : threads) {
    total += t.total;
    complete += t.complete;
  }
  EXPECT_GE(double(complete) / total, 0.90) << complete << " of " << total << " ns";
  // And the kernel's sleep path sits on top of bottom().
  bool kernel_on_top = false;
  for (auto& [tgid, proc] : doc.items()) {
    if (tgid.starts_with("_")) continue;
    for (auto& [tid, entries] : proc["pids"].items())
      for (auto& [id, e] : entries.items()) {
        if (e["kind"] != "off" || e["frames"].empty()) continue;
        const auto& frames = e["frames"];
        bool kernel_first = frames[0].value("kernel", false);
        bool has_bottom = false;
        for (auto& f : frames) has_bottom |= f["function"] == "bottom";
        kernel_on_top |= kernel_first && has_bottom;
      }
  }
  EXPECT_TRUE(kernel_on_top);
}

// The fixture's own frames (its executable and library), outermost first.
std::map<std::string, uint64_t> own_paths(const std::string& folded_path) {
  static const std::set<std::string> own = {"main", "thread_main", "run_chain", "level1", "level2", "level3",
                                            "lib_outer", "lib_inner", "compare", "bottom"};
  std::map<std::string, uint64_t> out;
  for (const auto& s : read_folded(folded_path)) {
    std::string path;
    for (const auto& f : s.frames)
      if (own.count(f)) path += f + ";";
    out[path] += s.weight;
  }
  return out;
}

TEST(Unwind, FramePointerAndDwarfUnwindersAgree) {
  REQUIRE_ROOT();
  // A frame-pointer build, on a chain that stays out of libc (which keeps no
  // frame pointers), unwound both ways: the same paths with the same shares.
  std::string fp_out = fresh_dir("chain_agree_fp"), dw_out = fresh_dir("chain_agree_dwarf");
  ASSERT_EQ(record_chain("e2e_chain_fp", "direct", "--on-cpu", "fp", fp_out).exit_code, 0);
  ASSERT_EQ(record_chain("e2e_chain_fp", "direct", "--on-cpu", "dwarf", dw_out).exit_code, 0);
  auto share = [](const std::map<std::string, uint64_t>& m, const std::string& path) {
    uint64_t all = 0;
    for (auto& [p, n] : m) all += n;
    auto it = m.find(path);
    return it == m.end() ? 0.0 : double(it->second) / all;
  };
  auto fp = own_paths(fp_out + "/oncpu.folded"), dw = own_paths(dw_out + "/oncpu.folded");
  const std::string main_path = "main;run_chain;level1;level2;level3;lib_outer;lib_inner;compare;bottom;";
  const std::string thread_path = "thread_main;run_chain;level1;level2;level3;lib_outer;lib_inner;compare;bottom;";
  double fp_full = share(fp, main_path) + share(fp, thread_path);
  double dw_full = share(dw, main_path) + share(dw, thread_path);
  EXPECT_GE(fp_full, 0.9) << "frame-pointer walk";
  EXPECT_GE(dw_full, 0.9) << "DWARF unwinding";
  EXPECT_NEAR(share(fp, main_path), share(dw, main_path), 0.15);
}

TEST(Unwind, CodeWithoutUnwindInfoIsCountedNotInvented) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("chain_jit");
  auto r = record_chain("e2e_chain_nofp", "jit", "--on-cpu", "dwarf", out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = read_json(out + "/stacks.json");
  const auto& unwind = doc["_stackwatch"]["unwind"];
  ASSERT_TRUE(unwind["incomplete"].contains("no unwind info")) << unwind.dump();
  EXPECT_GT(unwind["incomplete"]["no unwind info"].get<uint64_t>(), 20u);
  EXPECT_NE(r.out.find("no unwind info"), std::string::npos) << "reported per interval";
  // Samples in the generated code stop there: no frame is made up below it.
  uint64_t jit_samples = 0;
  for (auto& [tgid, proc] : doc.items()) {
    if (tgid.starts_with("_")) continue;
    for (auto& [tid, entries] : proc["pids"].items())
      for (auto& [id, e] : entries.items()) {
        std::vector<nlohmann::json> user;
        for (auto& f : e["frames"])
          if (!f.value("kernel", false)) user.push_back(f);
        if (user.empty() || user[0]["module"] != "[anon]") continue;
        jit_samples += e["count"].get<uint64_t>();
        EXPECT_EQ(user.size(), 1u) << "a frame past the JIT code was invented: " << e["frames"].dump();
      }
  }
  EXPECT_GT(jit_samples, 20u);
}

}  // namespace
}  // namespace stackwatch::testing
