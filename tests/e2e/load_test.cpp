// End to end: the load series and --load-threshold around a known busy phase
// (4 busy threads on the machine's CPUs for 3 s between idle periods).
#include <sstream>

#include "e2e_support.h"

namespace stackwatch::testing {
namespace {

struct Row {
  double cpu_util = 0;
  bool spike = false;
};

std::vector<Row> read_series(const std::string& path) {
  std::istringstream in(slurp(path));
  std::string line;
  std::getline(in, line);
  std::vector<std::string> header;
  std::stringstream hs(line);
  for (std::string h; std::getline(hs, h, ',');) header.push_back(h);
  auto col = [&](const std::string& name) {
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return static_cast<int>(i);
    return -1;
  };
  int util = col("cpu_util"), spike = col("load_spike");
  EXPECT_GE(util, 0);
  EXPECT_GE(spike, 0);
  std::vector<Row> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream cs(line);
    for (std::string c; std::getline(cs, c, ',');) cells.push_back(c);
    if (static_cast<int>(cells.size()) <= std::max(util, spike)) continue;
    rows.push_back({std::stod(cells[util]), cells[spike] == "1"});
  }
  return rows;
}

TEST(Load, BusyPhaseStandsOutAndTheThresholdMarksIt) {
  REQUIRE_ROOT();
  std::string out = fresh_dir("load");
  auto r = run_process({stackwatch_bin(), "record", "-i", "1", "--on-cpu", "--load-threshold", "cpu_util>70", "-o",
                        out, "--", E2E_LOAD_FIXTURE, "3", "3", "3", "4"},
                       60);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = read_series(out + "/series.csv");
  ASSERT_GE(rows.size(), 8u);
  double busy_max = 0, idle_min = 100;
  int spikes = 0;
  // The first two and the last two intervals are idle; the busy phase is in
  // the middle (3 s of 4 threads on 2 CPUs).
  for (size_t i = 0; i < rows.size(); ++i) {
    spikes += rows[i].spike;
    if (i < 2 || i + 2 >= rows.size()) idle_min = std::min(idle_min, rows[i].cpu_util);
    if (i >= 3 && i + 3 < rows.size()) busy_max = std::max(busy_max, rows[i].cpu_util);
  }
  EXPECT_GT(busy_max, 90.0);
  EXPECT_GT(busy_max - idle_min, 30.0) << "the busy phase stands out";
  EXPECT_GE(spikes, 2) << "the threshold marks the busy intervals";
  EXPECT_LE(spikes, static_cast<int>(rows.size()) - 3) << "and not the idle ones";
  EXPECT_NE(r.out.find("load above threshold"), std::string::npos);
  // The busy intervals' stacks are kept apart: the spinning function is there.
  auto spike_stacks = read_folded(out + "/load-spikes.folded");
  uint64_t spinning = 0, all = 0;
  for (const auto& s : spike_stacks) {
    all += s.weight;
    if (has_frame(s, "spin_until")) spinning += s.weight;
  }
  EXPECT_GT(spinning, 0u);
}

}  // namespace
}  // namespace stackwatch::testing
