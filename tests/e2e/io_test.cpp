// End to end: `record --io` attributes system-call bytes and calls, the file
// descriptor's kind, flushes and block requests to the functions that made them.
#include <filesystem>

#include "e2e_support.h"

namespace stackwatch::testing {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

struct IoEntry {
  std::vector<std::string> functions;  // innermost first
  std::vector<bool> kernel;
  std::string detail;
  uint64_t count = 0;
  uint64_t bytes = 0;
  uint64_t latency_ns = 0;
  std::string process;
};

std::vector<IoEntry> read_io_entries(const nlohmann::json& doc) {
  std::vector<IoEntry> out;
  for (auto& [tgid, proc] : doc.items()) {
    if (tgid.starts_with("_")) continue;
    for (auto& [tid, entries] : proc["pids"].items())
      for (auto& [id, e] : entries.items()) {
        if (e["kind"] != "io") continue;
        IoEntry o;
        o.detail = e["detail"].get<std::string>();
        o.count = e["count"].get<uint64_t>();
        o.bytes = e["bytes"].get<uint64_t>();
        o.latency_ns = e["latency_ns"].get<uint64_t>();
        o.process = proc["name"].get<std::string>();
        for (auto& f : e["frames"]) {
          o.functions.push_back(f["function"].get<std::string>());
          o.kernel.push_back(f.value("kernel", false));
        }
        out.push_back(std::move(o));
      }
  }
  return out;
}

bool has_user_frame(const IoEntry& e, const std::string& name) {
  for (size_t i = 0; i < e.functions.size(); ++i)
    if (!e.kernel[i] && e.functions[i] == name) return true;
  return false;
}

// The entries of one function and detail, summed.
struct IoTotals {
  uint64_t count = 0, bytes = 0, latency_ns = 0;
};
IoTotals totals(const std::vector<IoEntry>& entries, const std::string& function, const std::string& detail) {
  IoTotals t;
  for (const auto& e : entries)
    if (e.detail == detail && has_user_frame(e, function)) {
      t.count += e.count;
      t.bytes += e.bytes;
      t.latency_ns += e.latency_ns;
    }
  return t;
}

// io.folded weight of the stacks through `function` whose leaf is `[detail]`.
uint64_t folded_bytes(const std::vector<flamegraph::FoldedStack>& folded, const std::string& function,
                      const std::string& detail) {
  uint64_t w = 0;
  for (const auto& s : folded)
    if (!s.frames.empty() && s.frames.back() == "[" + detail + "]" && has_frame(s, function)) w += s.weight;
  return w;
}

// A directory on the real disk (not tmpfs), removed at the end of the test.
class DiskDir {
 public:
  explicit DiskDir(const std::string& name)
      : path_("/var/tmp/sw_e2e_" + name + "_" + std::to_string(getpid())) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~DiskDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

ProcessResult record_io(const std::string& out, const std::vector<std::string>& fixture_args) {
  std::vector<std::string> argv = {stackwatch_bin(), "record", "--io", "-i", "1", "-o", out, "--", fixture("e2e_io")};
  argv.insert(argv.end(), fixture_args.begin(), fixture_args.end());
  return run_process(argv, 90);
}

TEST(Io, BytesGoToTheWritingAndTheReadingFunction) {
  REQUIRE_ROOT();
  DiskDir dir("io_bytes");
  std::string out = fresh_dir("io_bytes");
  auto r = record_io(out, {"bytes", dir.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  auto folded = read_folded(out + "/io.folded");
  EXPECT_NEAR(double(folded_bytes(folded, "write_data", "write file")), 100.0 * kMiB, 5.0 * kMiB);
  EXPECT_NEAR(double(folded_bytes(folded, "read_data", "read file")), 10.0 * kMiB, 0.5 * kMiB);
  EXPECT_EQ(folded_bytes(folded, "write_data", "read file"), 0u) << "no reads under write_data";
  EXPECT_EQ(folded_bytes(folded, "read_data", "write file"), 0u) << "no writes under read_data";

  auto entries = read_io_entries(read_json(out + "/stacks.json"));
  IoTotals w = totals(entries, "write_data", "write file");
  IoTotals rd = totals(entries, "read_data", "read file");
  // 100 and 10 calls of 1 MiB each; a lost call would show as fewer.
  EXPECT_GE(w.count, 95u);
  EXPECT_LE(w.count, 100u);
  EXPECT_GE(rd.count, 9u);
  EXPECT_LE(rd.count, 10u);
  EXPECT_GT(w.latency_ns, 0u) << "time in the calls is summed";
  for (const auto& e : entries) {
    if (has_user_frame(e, "write_data") && e.detail == "write file") {
      EXPECT_EQ(e.process, "e2e_io");
    }
  }
}

// Through libc's write()/read()/fdatasync(), which keep no frame: the
// frame-pointer walk alone reads main -> write (the wrapper's caller is
// skipped); the recorder puts the caller back from the wrapper's CFI.
TEST(Io, CallersOfLibcWrappersAreOnTheStack) {
  REQUIRE_ROOT();
  DiskDir dir("io_libc");
  std::string out = fresh_dir("io_libc");
  auto r = record_io(out, {"libc", dir.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  auto folded = read_folded(out + "/io.folded");
  EXPECT_NEAR(double(folded_bytes(folded, "libc_write_data", "write file")), 16.0 * kMiB, 0.8 * kMiB);
  EXPECT_NEAR(double(folded_bytes(folded, "libc_read_data", "read file")), 4.0 * kMiB, 0.2 * kMiB);
  for (const auto& s : folded) {
    int caller = frame_index(s, "libc_write_data");
    if (caller < 0) continue;
    // Outermost first: main, the caller, then the wrapper in libc.
    int main_at = frame_index(s, "main");
    EXPECT_GE(main_at, 0) << "main above libc_write_data";
    EXPECT_LT(main_at, caller);
    ASSERT_LT(static_cast<size_t>(caller) + 2, s.frames.size()) << "the libc wrapper below its caller";
    EXPECT_NE(s.frames[caller + 1].find("write"), std::string::npos) << s.frames[caller + 1];
  }

  auto entries = read_io_entries(read_json(out + "/stacks.json"));
  IoTotals w = totals(entries, "libc_write_data", "write file");
  EXPECT_EQ(w.count, 16u);
  EXPECT_EQ(w.bytes, 16 * kMiB);
  EXPECT_EQ(totals(entries, "libc_read_data", "read file").count, 4u);
  EXPECT_EQ(totals(entries, "libc_sync", "fdatasync file").count, 8u);
  // No write of the process is left without its caller: the only writes it
  // makes are libc_write_data's.
  uint64_t all_writes = 0;
  for (const auto& e : entries)
    if (e.detail == "write file" && e.process == "e2e_io") all_writes += e.bytes;
  EXPECT_EQ(all_writes, 16 * kMiB);
}

// The libc scenario built without frame pointers. In DWARF mode (the
// default) each call's stack is copied and unwound with CFI: main is above
// every caller of the wrappers. The frame-pointer walk of the same program
// stops in the wrapper's caller (recovered from the wrapper's CFI) and
// loses main: that the fixture lacks frame pointers is checked too.
TEST(Io, DwarfStacksAreWholeWithoutFramePointers) {
  REQUIRE_ROOT();
  DiskDir dir("io_nofp");
  auto main_above = [](const std::vector<flamegraph::FoldedStack>& folded, const std::string& caller,
                       const std::string& detail) {
    uint64_t with = 0, without = 0;
    for (const auto& s : folded) {
      int at = frame_index(s, caller);
      if (at < 0 || s.frames.back() != "[" + detail + "]") continue;
      int main_at = frame_index(s, "main");
      (main_at >= 0 && main_at < at ? with : without) += s.weight;
    }
    return std::make_pair(with, without);
  };
  for (bool dwarf : {true, false}) {
    SCOPED_TRACE(dwarf ? "--call-graph dwarf" : "--call-graph fp");
    std::string out = fresh_dir(dwarf ? "io_nofp_dwarf" : "io_nofp_fp");
    std::vector<std::string> argv = {stackwatch_bin(), "record", "--io", "-i", "1", "--call-graph", dwarf ? "dwarf" : "fp",
                                     "-o", out, "--", fixture("e2e_io_nofp"), "libc", dir.path()};
    auto r = run_process(argv, 90);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto folded = read_folded(out + "/io.folded");
    auto [writes_with_main, writes_without] = main_above(folded, "libc_write_data", "write file");
    auto [reads_with_main, reads_without] = main_above(folded, "libc_read_data", "read file");
    // Every call is counted in both modes, with its caller.
    EXPECT_EQ(writes_with_main + writes_without, 16 * kMiB);
    EXPECT_EQ(reads_with_main + reads_without, 4 * kMiB);
    if (dwarf) {
      EXPECT_EQ(writes_with_main, 16 * kMiB) << "main above libc_write_data in every write";
      EXPECT_EQ(reads_with_main, 4 * kMiB);
      auto entries = read_io_entries(read_json(out + "/stacks.json"));
      EXPECT_EQ(totals(entries, "libc_write_data", "write file").count, 16u);
      EXPECT_EQ(totals(entries, "libc_sync", "fdatasync file").count, 8u);
    } else {
      EXPECT_GT(writes_without, 0u) << "the fixture has frame pointers: this test would not tell DWARF from fp";
    }
  }
}

// More calls than the copy ring holds (made while the recorder is stopped:
// its reader keeps up with any flood otherwise): the calls without a copy are counted
// in the kernel under their frame-pointer stacks (which lose main here) and
// then given to the copied stacks: one whole stack, every call counted.
TEST(Io, CallsBeyondTheCopyRingJoinTheCopiedStacks) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("io_nofp_flood");
  constexpr uint64_t kCalls = 300000;
  std::vector<std::string> argv = {stackwatch_bin(), "record", "--io", "-i", "1", "-o", out, "--",
                                   fixture("e2e_io_nofp"), "stalled", std::to_string(kCalls)};
  auto r = run_process(argv, 90);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = read_json(out + "/stacks.json");
  EXPECT_GT(doc["_stackwatch"]["dropped"]["stack_copy_ring_full"].get<uint64_t>(), 0u)
      << "the ring never filled: this test did not test the fallback";
  CallerSplit writes = split_by_caller(read_folded(out + "/io.folded"), "small_writes", "main");
  EXPECT_EQ(writes.with, kCalls) << "1-byte writes: bytes are calls";
  EXPECT_EQ(writes.without, 0u);
  EXPECT_EQ(totals(read_io_entries(doc), "small_writes", "write device").count, kCalls);
}

TEST(Io, NoCallIsLostOrCountedTwiceAcrossManyIntervals) {
  REQUIRE_ROOT();
  DiskDir dir("io_paced");
  std::string out = fresh_dir("io_paced");
  // Over 2 s of writes, drained every 0.2 s: the buffers flip while calls
  // are in flight.
  std::vector<std::string> argv = {stackwatch_bin(), "record", "--io", "-i", "0.2", "-o", out, "--",
                                   fixture("e2e_io"), "paced", dir.path()};
  auto r = run_process(argv, 90);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto entries = read_io_entries(read_json(out + "/stacks.json"));
  IoTotals w = totals(entries, "write_data", "write file");
  EXPECT_EQ(w.count, 100u);
  EXPECT_EQ(w.bytes, 100 * kMiB);
  auto folded = read_folded(out + "/io.folded");
  EXPECT_EQ(folded_bytes(folded, "write_data", "write file"), 100 * kMiB);
  EXPECT_EQ(folded_bytes(folded, "read_data", "read file"), 10 * kMiB);
}

TEST(Io, FdKindsSeparatePipesFromSockets) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("io_kinds");
  auto r = record_io(out, {"kinds"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto entries = read_io_entries(read_json(out + "/stacks.json"));

  IoTotals pipe = totals(entries, "write_pipe", "write pipe");
  EXPECT_EQ(pipe.count, 16u);
  EXPECT_EQ(pipe.bytes, 16u * 1024);
  IoTotals sock = totals(entries, "write_socket", "write socket");
  EXPECT_EQ(sock.count, 16u);
  EXPECT_EQ(sock.bytes, 16u * 1024);
  IoTotals sendto = totals(entries, "send_socket", "sendto socket");
  EXPECT_EQ(sendto.count, 8u);
  EXPECT_EQ(sendto.bytes, 8u * 1024);
  // Nothing of these functions is counted under another kind.
  EXPECT_EQ(totals(entries, "write_pipe", "write socket").count + totals(entries, "write_pipe", "write file").count, 0u);
  EXPECT_EQ(totals(entries, "write_socket", "write pipe").count + totals(entries, "write_socket", "write file").count,
            0u);

  auto folded = read_folded(out + "/io.folded");
  EXPECT_EQ(folded_bytes(folded, "write_pipe", "write pipe"), 16u * 1024);
  EXPECT_EQ(folded_bytes(folded, "write_socket", "write socket"), 16u * 1024);
}

TEST(Io, FlushesAreCountedPerCallWithTheirTime) {
  REQUIRE_ROOT();
  DiskDir dir("io_fsync");
  std::string out = fresh_dir("io_fsync");
  auto r = record_io(out, {"fsync", dir.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto entries = read_io_entries(read_json(out + "/stacks.json"));

  IoTotals fdatasync = totals(entries, "sync_data", "fdatasync file");
  EXPECT_EQ(fdatasync.count, 20u);
  EXPECT_EQ(fdatasync.bytes, 0u) << "a flush moves no bytes of its own";
  EXPECT_GT(fdatasync.latency_ns, 0u);
  IoTotals fsync = totals(entries, "sync_all", "fsync file");
  EXPECT_EQ(fsync.count, 5u);
  IoTotals writes = totals(entries, "sync_data", "write file");
  EXPECT_EQ(writes.count, 20u);
  EXPECT_EQ(writes.bytes, 20u * 4096);
  // fdatasync waits for the disk; the 4 KiB writes only copy to the page cache.
  EXPECT_GT(fdatasync.latency_ns, writes.latency_ns);
}

TEST(Io, DirectWritesShowBlockRequestsOfTheProcessWithLatency) {
  REQUIRE_ROOT();
  DiskDir dir("io_direct");
  std::string out = fresh_dir("io_direct");
  auto r = record_io(out, {"direct", dir.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto entries = read_io_entries(read_json(out + "/stacks.json"));

  IoTotals block = totals(entries, "direct_write", "block write");
  // 32 x 256 KiB, possibly split into more requests by the device's limits;
  // a few may be merged, none has the page cache in between.
  EXPECT_GE(block.bytes, 8 * kMiB * 95 / 100);
  EXPECT_LE(block.bytes, 8 * kMiB);
  EXPECT_GE(block.count, 1u);
  EXPECT_GT(block.latency_ns, 0u);
  // The submitting kernel path is there too, above the user frames.
  bool kernel_path = false;
  for (const auto& e : entries) {
    if (e.detail != "block write" || !has_user_frame(e, "direct_write")) continue;
    EXPECT_EQ(e.process, "e2e_io");
    for (size_t i = 0; i < e.functions.size(); ++i)
      if (e.kernel[i] && e.functions[i].find("submit_bio") != std::string::npos) kernel_path = true;
  }
  EXPECT_TRUE(kernel_path) << "submit_bio among the kernel frames of the request";
  IoTotals calls = totals(entries, "direct_write", "write file");
  EXPECT_EQ(calls.count, 32u);
  EXPECT_EQ(calls.bytes, 8 * kMiB);

  // blockio.folded is weighted by latency (us) per issuing stack.
  uint64_t us = 0;
  for (const auto& s : read_folded(out + "/blockio.folded"))
    if (has_frame(s, "direct_write") && s.frames.back() == "[block write]") us += s.weight;
  EXPECT_GT(us, 0u);
}

}  // namespace
}  // namespace stackwatch::testing
