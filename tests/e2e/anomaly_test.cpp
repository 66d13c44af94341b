// End to end: the detector flags the CPU-spike and new-stack scenarios live,
// names the right stacks, and the localizer ranks the right function,
// probes it by itself and leaves no probe behind.
#include <filesystem>
#include <sstream>

#include "e2e_support.h"

namespace stackwatch::testing {
namespace {

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(slurp(path));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

// No uprobe perf event of ours is left on the machine.
int attached_uprobes() {
  auto r = run_process({"/usr/sbin/bpftool", "perf", "list"}, 20);
  int n = 0;
  for (size_t p = 0; (p = r.out.find("uprobe", p)) != std::string::npos; ++p) ++n;
  return n;
}

ProcessResult record_scenario(const std::string& mode, const std::string& out) {
  return run_process({stackwatch_bin(), "record", "-F", "99", "-i", "1", "--on-cpu", "--probe-seconds", "4", "-o", out,
                      "--", fixture("e2e_scenarios"), mode, "14", "22"},
                     120);
}

TEST(Anomaly, CpuSpikeIsFlaggedLocalizedAndProbed) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("cpu_spike");
  auto r = record_scenario("cpu-spike", out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto anomalies = read_jsonl(out + "/anomalies.jsonl");
  // Flags: in the spike phase (from interval 14 on), none before it, and
  // the spinning function's stack is the top contributor of one of them.
  bool spike_named = false;
  int before = 0, after = 0;
  for (const auto& a : anomalies) {
    uint64_t index = a["interval"].get<uint64_t>();
    if (a["kind"].get<std::string>().rfind("load_", 0) == 0) continue;
    (index < 13 ? before : after)++;
    if (index >= 13 && !a["top"].empty() &&
        a["top"][0]["series"].get<std::string>().find("checksum_range") != std::string::npos)
      spike_named = true;
  }
  EXPECT_GE(after, 1) << r.out;
  EXPECT_LE(before, 1) << "false alarms in the normal phase";
  EXPECT_TRUE(spike_named) << r.out;
  // The localizer: checksum_range ranks first, the hint says CPU-bound.
  auto hints = read_json(out + "/hints.json");
  ASSERT_FALSE(hints["processes"].empty()) << r.out;
  const auto& p = hints["processes"][0];
  ASSERT_FALSE(p["hints"].empty());
  EXPECT_EQ(p["hints"][0]["function"], "checksum_range") << p.dump();
  EXPECT_EQ(p["hints"][0]["category"], "cpu_bound") << p["hints"][0].dump();
  // Probed without being named: calls that took about a second were measured.
  auto probes = read_json(out + "/probes.json");
  bool probed = false;
  for (const auto& f : probes["functions"])
    if (f.value("function", "") == "checksum_range" && f.value("max_ns", uint64_t{0}) > 300'000'000u) probed = true;
  EXPECT_TRUE(probed) << probes.dump();
  EXPECT_EQ(attached_uprobes(), 0) << "no probe left behind";
}

TEST(Anomaly, NewStackIsFlaggedAndNamed) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("new_stack");
  auto r = record_scenario("new-stack", out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  bool named = false;
  for (const auto& a : read_jsonl(out + "/anomalies.jsonl"))
    for (const auto& c : a["top"])
      named |= c["series"].get<std::string>().find("rebuild_index") != std::string::npos;
  EXPECT_TRUE(named) << r.out;
  auto hints = read_json(out + "/hints.json");
  ASSERT_FALSE(hints["processes"].empty()) << r.out;
  ASSERT_FALSE(hints["processes"][0]["hints"].empty());
  EXPECT_EQ(hints["processes"][0]["hints"][0]["function"], "rebuild_index") << hints.dump();
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
