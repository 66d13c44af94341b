// End to end: each anomaly scenario of DESIGN.md (tests/fixtures/e2e/
// scenarios.c) recorded live with detection and localization on. The
// detector flags it, the localizer ranks the right function first, probes
// it without being told its name, compares its p99 with the p99 its
// baseline round measured before the anomaly, names the cause, and leaves
// no probe behind.
//
// The detector warms up for 16 intervals (localize/univariate_detector.h):
// the fixtures switch after that, at 1 s intervals.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "e2e_support.h"

namespace stackwatch::testing {
namespace {

namespace fs = std::filesystem;

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(slurp(path));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Uprobes on the fixture file still held by a stackwatch of this build.
// (The machine may run other people's system-wide recordings, which are
// free to localize and probe the fixture too: theirs are not counted.)
int attached_uprobes() {
  auto r = run_process({"/usr/sbin/bpftool", "perf", "list"}, 20);
  int n = 0;
  const std::string path = fixture("e2e_scenarios");
  std::error_code ec;
  const fs::path ours = fs::canonical(stackwatch_bin(), ec);
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(path) == std::string::npos || line.rfind("pid ", 0) != 0) continue;
    std::string pid = line.substr(4, line.find(' ', 4) - 4);
    fs::path exe = fs::read_symlink("/proc/" + pid + "/exe", ec);
    if (ec || exe != ours) continue;  // gone since, or another build's
    ++n;
    ADD_FAILURE() << "left behind: " << line;
  }
  return n;
}

struct Scenario {
  std::string mode;
  std::string switch_after;  // seconds
  std::string total;
  bool off_cpu;
  std::string cgroup;  // a cgroup for the fixture to join, or empty
  std::string probe_seconds = "5";
};

ProcessResult record_scenario(const Scenario& s, const std::string& out) {
  std::vector<std::string> argv = {stackwatch_bin(), "record",          "-F", "99", "-i", "1",
                                   "--probe-seconds", s.probe_seconds, "--baseline-probes", "-o", out};
  if (!s.off_cpu) argv.push_back("--on-cpu");
  for (const std::string& a : {std::string("--"), fixture("e2e_scenarios"), s.mode, s.switch_after, s.total})
    argv.push_back(a);
  if (!s.cgroup.empty()) argv.push_back(s.cgroup);
  return run_process(argv, 180);
}

// The interval the fixture switched in: it prints "switched_unix_ns=N"
// (through record's inherited stdout); intervals.jsonl has their bounds.
uint64_t switch_interval(const std::string& out_dir, const std::string& stdout_text) {
  size_t at = stdout_text.find("switched_unix_ns=");
  if (at == std::string::npos) return UINT64_MAX;
  int64_t when = std::stoll(stdout_text.substr(at + 17));
  for (const auto& iv : read_jsonl(out_dir + "/intervals.jsonl"))
    if (iv["end_unix_ns"].get<int64_t>() > when) return iv["index"].get<uint64_t>();
  return UINT64_MAX;
}

// The localizations of anomalies flagged in or after interval `first`, in
// order, restricted to those whose suspects include `function` if given:
// a blip the detector flags in the normal phase of a busy machine is not
// the scenario's anomaly.
std::vector<const nlohmann::json*> localizations_from(const nlohmann::json& hints, uint64_t first,
                                                      const std::string& function = "") {
  std::vector<const nlohmann::json*> out;
  for (const auto& p : hints["processes"]) {
    if (p["anomaly_intervals"].empty() || p["anomaly_intervals"][0].get<uint64_t>() < first) continue;
    bool has = function.empty();
    for (const auto& h : p["hints"]) has |= h.value("function", "") == function;
    if (has) out.push_back(&p);
  }
  return out;
}

// The first anomaly probe of `function` in probes.json that saw calls
// complete (a window cut short by a later anomaly may see none of calls
// that take seconds), else the first, else null.
const nlohmann::json* probe_of(const nlohmann::json& probes, const std::string& function) {
  const nlohmann::json* first = nullptr;
  for (const auto& f : probes["functions"]) {
    if (f.value("function", "") != function) continue;
    if (f.value("calls", uint64_t{0}) > 0) return &f;
    if (!first) first = &f;
  }
  return first;
}

// p99 in the anomaly against the p99 the baseline round measured before it.
void expect_p99_over_baseline(const nlohmann::json& probe, double factor) {
  ASSERT_TRUE(probe["baseline"].is_object()) << probe.dump();
  const auto& b = probe["baseline"];
  EXPECT_TRUE(b["measured"].get<bool>()) << "no baseline round measured " << probe["function"] << ": " << probe.dump();
  EXPECT_GT(b["calls"].get<uint64_t>(), 0u) << probe.dump();
  EXPECT_GT(probe["calls"].get<uint64_t>(), 0u) << probe.dump();
  EXPECT_GE(static_cast<double>(probe["p99_ns"].get<uint64_t>()), factor * static_cast<double>(b["p99_ns"].get<uint64_t>()))
      << probe.dump();
  EXPECT_GE(probe["p99_ratio"].get<double>(), factor) << probe.dump();
}

// A blkio (cgroup v1) throttle on the disk of /var/tmp: the slow disk the
// fsync scenario's two processes share. Created and removed by the test.
class BlkioThrottle {
 public:
  static constexpr const char* kRoot = "/sys/fs/cgroup/blkio";
  static bool available() { return fs::exists(std::string(kRoot) + "/blkio.throttle.write_bps_device"); }

  explicit BlkioThrottle(uint64_t write_bps) : dir_(std::string(kRoot) + "/stackwatch_e2e_" + std::to_string(getpid())) {
    fs::create_directory(dir_);
    std::ofstream(dir_ + "/blkio.throttle.write_bps_device") << disk_of("/var/tmp") << " " << write_bps << "\n";
  }
  ~BlkioThrottle() {
    // The fixture's processes have exited (record waited for them); the
    // kernel may take a moment to let the group go.
    for (int i = 0; i < 50 && ::rmdir(dir_.c_str()) != 0; ++i) ::usleep(100000);
  }
  const std::string& dir() const { return dir_; }
  std::string limit() const { return slurp(dir_ + "/blkio.throttle.write_bps_device"); }

 private:
  // "MAJ:MIN" of the whole disk holding path (throttles apply to disks).
  static std::string disk_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return "";
    std::string dev = std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
    std::string sys = "/sys/dev/block/" + dev;
    if (fs::exists(sys + "/partition")) {
      std::string parent = slurp(fs::canonical(sys).parent_path().string() + "/dev");
      while (!parent.empty() && (parent.back() == '\n' || parent.back() == ' ')) parent.pop_back();
      return parent;
    }
    return dev;
  }
  std::string dir_;
};

TEST(Anomaly, CpuSpikeIsFlaggedLocalizedAndProbed) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("cpu_spike");
  auto r = record_scenario({"cpu-spike", "16", "26", false, "", "5"}, out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto anomalies = read_jsonl(out + "/anomalies.jsonl");
  uint64_t switched = switch_interval(out, r.out);
  ASSERT_NE(switched, UINT64_MAX) << r.out;
  // Flags: in the spike phase, at most one blip before it, and the spinning
  // function's stack is the top contributor of one of them.
  bool spike_named = false;
  int before = 0, after = 0;
  for (const auto& a : anomalies) {
    uint64_t index = a["interval"].get<uint64_t>();
    if (a["kind"].get<std::string>().rfind("load_", 0) == 0) continue;
    (index < switched ? before : after)++;
    if (index >= switched && !a["top"].empty() &&
        a["top"][0]["series"].get<std::string>().find("checksum_range") != std::string::npos)
      spike_named = true;
  }
  EXPECT_GE(after, 1) << r.out;
  EXPECT_LE(before, 1) << "false alarms in the normal phase";
  EXPECT_TRUE(spike_named) << r.out;
  // The localizer: checksum_range ranks first, the hint says CPU-bound.
  ASSERT_TRUE(fs::exists(out + "/hints.json")) << "nothing localized\n" << r.out;
  auto hints = read_json(out + "/hints.json");
  auto after_switch = localizations_from(hints, switched);
  ASSERT_FALSE(after_switch.empty()) << hints.dump() << r.out;
  const auto& p = *after_switch.front();
  ASSERT_FALSE(p["hints"].empty());
  EXPECT_EQ(p["hints"][0]["function"], "checksum_range") << p.dump();
  EXPECT_EQ(p["hints"][0]["category"], "cpu_bound") << p["hints"][0].dump();
  // Probed without being named: calls that took about a second were
  // measured, against well under a millisecond before.
  ASSERT_TRUE(fs::exists(out + "/probes.json")) << "nothing probed\n" << r.out;
  auto probes = read_json(out + "/probes.json");
  const nlohmann::json* probe = probe_of(probes, "checksum_range");
  ASSERT_NE(probe, nullptr) << probes.dump();
  EXPECT_GT((*probe)["max_ns"].get<uint64_t>(), 300'000'000u) << probe->dump();
  expect_p99_over_baseline(*probe, 10);
  EXPECT_EQ(attached_uprobes(), 0) << "no probe left behind";
}

TEST(Anomaly, FsyncStallUnderDiskPressureIsLocalizedToTheFsyncingFunction) {
  REQUIRE_ROOT();
  if (!BlkioThrottle::available())
    GTEST_SKIP() << "no blkio cgroup (v1) at /sys/fs/cgroup/blkio: cannot make a slow disk for the flood";
  std::string out = fresh_dir("fsync_stall");
  ProcessResult r;
  {
    // 4 MB/s: the flood's 2 MB direct writes take half a second each, and
    // each fdatasync of the log waits behind them. A few calls a window:
    // probes stay 8 s.
    BlkioThrottle throttle(4u << 20);
    ASSERT_NE(throttle.limit().find("4194304"), std::string::npos) << "throttle not set: " << throttle.limit();
    r = record_scenario({"fsync-stall", "18", "30", true, throttle.dir(), "8"}, out);
  }
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(fs::exists(out + "/hints.json")) << "nothing localized\n" << r.out;
  auto hints = read_json(out + "/hints.json");
  // In the process that fsyncs, flush_append_only_file ranks first; the
  // hint names fdatasync and disk I/O. (The flood is localized too, as a
  // process of its own.)
  uint64_t switched = switch_interval(out, r.out);
  ASSERT_NE(switched, UINT64_MAX) << r.out;
  auto after_switch = localizations_from(hints, switched, "flush_append_only_file");
  ASSERT_FALSE(after_switch.empty()) << hints.dump() << r.out;
  const nlohmann::json* p = after_switch.front();
  const auto& top = (*p)["hints"][0];
  EXPECT_EQ(top["function"], "flush_append_only_file") << p->dump();
  EXPECT_EQ(top["category"], "disk_io") << top.dump();
  EXPECT_NE(top["sentence"].get<std::string>().find("fdatasync"), std::string::npos) << top["sentence"];
  EXPECT_NE(top["sentence"].get<std::string>().find("disk I/O"), std::string::npos) << top["sentence"];
  // Probed without being named, the calls blocked on the disk, p99 against before.
  ASSERT_TRUE(fs::exists(out + "/probes.json")) << "nothing probed\n" << r.out;
  auto probes = read_json(out + "/probes.json");
  const nlohmann::json* probe = probe_of(probes, "flush_append_only_file");
  ASSERT_NE(probe, nullptr) << probes.dump() << r.out;
  EXPECT_GT((*probe)["blocked_share"].get<double>(), 0.5) << probe->dump();
  expect_p99_over_baseline(*probe, 10);
  EXPECT_NE(top["sentence"].get<std::string>().find("baseline"), std::string::npos) << top["sentence"];
  EXPECT_EQ(attached_uprobes(), 0) << "no probe left behind";
}

TEST(Anomaly, LockContentionIsLocalizedToTheContendedFunction) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("lock");
  auto r = record_scenario({"lock", "18", "30", true, "", "5"}, out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(fs::exists(out + "/hints.json")) << "nothing localized\n" << r.out;
  auto hints = read_json(out + "/hints.json");
  uint64_t switched = switch_interval(out, r.out);
  ASSERT_NE(switched, UINT64_MAX) << r.out;
  auto after_switch = localizations_from(hints, switched);
  ASSERT_FALSE(after_switch.empty()) << hints.dump() << r.out;
  const auto& p = *after_switch.front();
  ASSERT_FALSE(p["hints"].empty());
  const auto& top = p["hints"][0];
  EXPECT_EQ(top["function"], "update_shared_counter") << p.dump() << r.out;
  EXPECT_EQ(top["category"], "lock_contention") << top.dump();
  EXPECT_NE(top["sentence"].get<std::string>().find("futex"), std::string::npos) << top["sentence"];
  ASSERT_TRUE(fs::exists(out + "/probes.json")) << "nothing probed\n" << r.out;
  auto probes = read_json(out + "/probes.json");
  const nlohmann::json* probe = probe_of(probes, "update_shared_counter");
  ASSERT_NE(probe, nullptr) << probes.dump() << r.out;
  expect_p99_over_baseline(*probe, 10);
  EXPECT_EQ(attached_uprobes(), 0) << "no probe left behind";
}

TEST(Anomaly, NewStackIsFlaggedAndNamed) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("new_stack");
  auto r = record_scenario({"new-stack", "16", "26", false, "", "5"}, out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  bool named = false;
  for (const auto& a : read_jsonl(out + "/anomalies.jsonl"))
    for (const auto& c : a["top"])
      named |= c["series"].get<std::string>().find("rebuild_index") != std::string::npos;
  EXPECT_TRUE(named) << r.out;
  ASSERT_TRUE(fs::exists(out + "/hints.json")) << "nothing localized\n" << r.out;
  auto hints = read_json(out + "/hints.json");
  uint64_t switched = switch_interval(out, r.out);
  ASSERT_NE(switched, UINT64_MAX) << r.out;
  auto after_switch = localizations_from(hints, switched);
  ASSERT_FALSE(after_switch.empty()) << hints.dump() << r.out;
  ASSERT_FALSE((*after_switch.front())["hints"].empty());
  const auto& top = (*after_switch.front())["hints"][0];
  EXPECT_EQ(top["function"], "rebuild_index") << hints.dump();
  // Probed without being named; it never ran before, so there is no p99 to
  // compare with and the hint says so.
  ASSERT_TRUE(fs::exists(out + "/probes.json")) << "nothing probed\n" << r.out;
  auto probes = read_json(out + "/probes.json");
  const nlohmann::json* probe = probe_of(probes, "rebuild_index");
  ASSERT_NE(probe, nullptr) << probes.dump();
  EXPECT_GT((*probe)["calls"].get<uint64_t>(), 0u);
  ASSERT_TRUE((*probe)["baseline"].is_object()) << probe->dump();
  EXPECT_FALSE((*probe)["baseline"]["sampled"].get<bool>()) << probe->dump();
  EXPECT_NE(top["sentence"].get<std::string>().find("no calls before"), std::string::npos) << top["sentence"];
  // stacks.json labels the new path's stacks.
  auto doc = read_json(out + "/stacks.json");
  bool labelled = false;
  for (auto& [tgid, proc] : doc.items()) {
    if (tgid.starts_with("_")) continue;
    for (auto& [tid, entries] : proc["pids"].items())
      for (auto& [id, e] : entries.items()) {
        bool has = false;
        for (auto& f : e["frames"]) has |= f["function"] == "rebuild_index";
        if (has && e["label"].is_string()) labelled = true;
      }
  }
  EXPECT_TRUE(labelled);
  EXPECT_EQ(attached_uprobes(), 0);
}

}  // namespace
}  // namespace stackwatch::testing
